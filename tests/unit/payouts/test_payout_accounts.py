"""Payout accounts end to end in one process: the payouts API's handler (API Gateway events), the
repository and the vault against moto's DynamoDB and KMS."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from functions import registry
from payments.kernel.config import settings
from payments.payouts.accounts import (
    PayoutAccountRequest,
    PayoutAccountsRepository,
    PayoutAccountUnusable,
    register,
)
from payments_dev.local.lambdas import LambdaContext

IBAN = "DE89370400440532013000"
#: every way the IBAN could leak: whole, printed, its BBAN, its account number
LEAKS = (IBAN, "DE89 3704 0044 0532 0130 00", "370400440532013000", "0532013000")
OTHER_IBAN = "NL91ABNA0417164300"
PATH = "/v1/sellers/seller_books/payout-account"


def event(method: str, path: str = PATH, body: Any = None, query: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "requestContext": {"requestId": "r", "stage": "test", "httpMethod": method, "path": path},
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def body(**fields: object) -> dict[str, object]:
    return {"iban": IBAN, "bic": "COBADEFFXXX", "account_holder": "Books Ltd", "currency": "EUR", **fields}


@pytest.fixture()
def api(kms: Any) -> Any:
    from functions.payouts import handler

    return handler


def call(api: Any, evt: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = api.handler(evt, LambdaContext(registry.PAYOUTS.local_name))
    return response["statusCode"], json.loads(response["body"])


def stored_items(ddb: Any) -> list[dict[str, Any]]:
    return ddb.scan(TableName=settings().payout_accounts_table)["Items"]


def test_put_then_get_answer_the_account_with_the_iban_masked(api, ddb):
    # When a seller registers its payout account, then reads it
    status, put = call(api, event("PUT", body=body()))
    got_status, got = call(api, event("GET"))
    # Then both answer the account, its IBAN masked
    assert status == 200 and got_status == 200, (put, got)
    assert put == got
    assert put["iban"] == "DE89 **** **** **** **30 00"
    assert put | {"updated_at": None} == {
        "seller_account": "seller_books",
        "currency": "EUR",
        "iban": "DE89 **** **** **** **30 00",
        "bic": "COBADEFFXXX",
        "account_holder": "Books Ltd",
        "valid": True,
        "invalid_reason": None,
        "version": 1,
        "updated_at": None,
    }
    # And the stored item holds the ciphertext, the masked form and a keyed hash: never the IBAN
    (item,) = stored_items(ddb)
    raw = json.dumps(item)
    assert not any(leak in raw for leak in LEAKS)
    assert {"iban_ciphertext", "iban_encrypted_key", "iban_mac", "iban_masked", "version", "valid"} <= set(item)


def test_the_same_account_again_writes_nothing(api, ddb):
    # Given a registered account
    _, first = call(api, event("PUT", body=body()))
    # When the same request is sent again (printed form of the same IBAN)
    status, again = call(api, event("PUT", body=body(iban="DE89 3704 0044 0532 0130 00")))
    # Then the answer is the account as it was: same version, same time
    assert status == 200 and again == first
    assert stored_items(ddb)[0]["version"] == {"N": "1"}


def test_another_account_replaces_it_with_the_next_version(api, ddb):
    call(api, event("PUT", body=body()))
    status, second = call(api, event("PUT", body=body(iban=OTHER_IBAN, bic=None)))
    assert status == 200 and second["version"] == 2 and second["iban"] == "NL91 **** **** **43 00"
    assert second["bic"] is None
    # And the bank file reads the new IBAN
    assert PayoutAccountsRepository().for_payout("seller_books", "EUR").iban == OTHER_IBAN


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"iban": "DE88370400440532013000"}, "iban"),  # wrong check digits
        ({"iban": "DE8937040044053201300"}, "iban"),  # wrong length for DE
        ({"iban": "DE65123456780532013000"}, "iban"),  # unknown bank
        ({"bic": "DEUTDEFFXXX"}, "bic"),  # not the IBAN's bank
        ({"account_holder": ""}, "account_holder"),
        ({"currency": "XXY"}, "currency"),
    ],
)
def test_a_bad_account_is_a_422_naming_the_field_and_nothing_is_stored(api, ddb, fields, field):
    # When a bad account is sent
    status, problem = call(api, event("PUT", body=body(**fields)))
    # Then 422 names the field, never quoting the value
    assert status == 422, problem
    assert problem["type"] == "urn:payments:problem:validation-error"
    assert [e["field"] for e in problem["errors"]] == [field]
    assert not any(str(v) in json.dumps(problem) for v in fields.values() if len(str(v)) > 3)
    # And nothing is stored
    assert stored_items(ddb) == []


def test_get_without_an_account_is_404_and_with_several_currencies_asks_which(api):
    status, problem = call(api, event("GET"))
    assert status == 404 and problem["type"] == "urn:payments:problem:not-found"
    call(api, event("PUT", body=body()))
    call(api, event("PUT", body=body(iban="GB29NWBK60161331926819", bic=None, currency="GBP")))
    status, problem = call(api, event("GET"))
    assert status == 422 and problem["errors"][0]["field"] == "currency", problem
    assert "EUR, GBP" in problem["errors"][0]["message"]
    status, gbp = call(api, event("GET", query={"currency": "GBP"}))
    assert status == 200 and gbp["iban"] == "GB29 **** **** **** **68 19"


def test_mark_invalid_flags_once_and_a_repeated_put_does_not_clear_it(api):
    call(api, event("PUT", body=body()))
    repo = PayoutAccountsRepository()
    # When a payout to the account was returned
    flagged = repo.mark_invalid("seller_books", "EUR", "AC04 account closed")
    again = repo.mark_invalid("seller_books", "EUR", "another reason")
    # Then it is invalid once, with its first reason
    assert flagged is not None and again is not None
    assert (flagged.valid, flagged.version, again.version, again.invalid_reason) == (
        False,
        2,
        2,
        "AC04 account closed",
    )
    # And payouts stop
    with pytest.raises(PayoutAccountUnusable, match="marked invalid"):
        repo.for_payout("seller_books", "EUR")
    # And the same account registered again stays invalid; another one is valid
    _, same = call(api, event("PUT", body=body()))
    assert same["valid"] is False and same["invalid_reason"] == "AC04 account closed"
    _, other = call(api, event("PUT", body=body(iban=OTHER_IBAN, bic=None)))
    assert other["valid"] is True and other["version"] == 3


def test_mark_invalid_leaves_an_account_registered_since_alone(api):
    call(api, event("PUT", body=body()))
    repo = PayoutAccountsRepository()
    paid_to = repo.for_payout("seller_books", "EUR")
    call(api, event("PUT", body=body(iban=OTHER_IBAN, bic=None)))
    # When the payout to the old IBAN comes back
    current = repo.mark_invalid("seller_books", "EUR", "AC04", iban_mac=paid_to.iban_mac)
    # Then the new account is not flagged
    assert current is not None and current.valid is True
    assert repo.mark_invalid("nobody", "EUR", "AC04") is None


class RacingRepository(PayoutAccountsRepository):
    """Runs ``meanwhile`` once, right after the first read: another request's write between our read and write."""

    def __init__(self, meanwhile: Any) -> None:
        super().__init__()
        self.meanwhile = meanwhile

    def get(self, seller_account: str, currency: str) -> Any:
        found = super().get(seller_account, currency)
        if self.meanwhile is not None:
            run, self.meanwhile = self.meanwhile, None
            run()
        return found


def test_a_changed_account_racing_mark_invalid_is_written_after_the_flag_never_over_it(api):
    # Given a registered account
    call(api, event("PUT", body=body()))
    # When the same account is PUT again while a returned payout marks it invalid in between
    repo = RacingRepository(lambda: PayoutAccountsRepository().mark_invalid("seller_books", "EUR", "AC04"))
    answer = register("seller_books", PayoutAccountRequest.model_validate(body(account_holder="Books Limited")), repo)
    # Then the PUT's write, conditional on the version it read, failed and was decided again on the fresh
    # account: a changed holder is another account, written after the flag (version 3), never over it
    assert answer.version == 3 and answer.valid is True and answer.account_holder == "Books Limited"


def test_a_repeated_put_racing_mark_invalid_leaves_the_flag(api):
    call(api, event("PUT", body=body()))
    repo = RacingRepository(lambda: PayoutAccountsRepository().mark_invalid("seller_books", "EUR", "AC04"))
    # When the identical account is PUT while it is being marked invalid
    answer = register("seller_books", PayoutAccountRequest.model_validate(body()), repo)
    # Then the flag stands (the read before the flag saw the same account: nothing to write)
    stored = PayoutAccountsRepository().get("seller_books", "EUR")
    assert stored is not None and stored.valid is False and stored.version == 2
    assert answer.version == 1  # what it read: the same account, unchanged by this request


def test_two_racing_puts_both_land_one_after_the_other(api):
    call(api, event("PUT", body=body()))
    other = PayoutAccountRequest.model_validate(body(iban=OTHER_IBAN, bic=None))
    repo = RacingRepository(lambda: register("seller_books", other, PayoutAccountsRepository()))
    answer = register("seller_books", PayoutAccountRequest.model_validate(body(account_holder="Books Limited")), repo)
    # Then the later write is version 3, on top of the racing one (version 2): no write was lost unseen
    assert answer.version == 3
    assert PayoutAccountsRepository().get("seller_books", "EUR").version == 3  # type: ignore[union-attr]


def test_for_payout_decrypts_and_the_ciphertext_is_bound_to_its_seller(api, ddb):
    call(api, event("PUT", body=body()))
    repo = PayoutAccountsRepository()
    destination = repo.for_payout("seller_books", "EUR")
    assert destination.iban == IBAN and destination.account_holder == "Books Ltd"
    assert IBAN not in repr(destination) and IBAN not in str(destination)
    # When the sealed IBAN is copied into another seller's item
    (item,) = stored_items(ddb)
    ddb.put_item(TableName=settings().payout_accounts_table, Item={**item, "pk": {"S": "seller_thief"}})
    item_copy = repo.get("seller_thief", "EUR")
    assert item_copy is not None
    # Then it cannot be opened there (KMS's encryption context and the GCM's associated data name the seller)
    with pytest.raises(Exception) as raised:
        repo.for_payout("seller_thief", "EUR")
    assert IBAN not in str(raised.value)
    with pytest.raises(PayoutAccountUnusable, match="no payout account"):
        repo.for_payout("seller_books", "USD")


def test_no_log_line_holds_the_iban_on_any_path(api, kms, caplog, capsys):
    from payments.kernel.observability import logger

    # Given every logger at DEBUG (Powertools' JSON logs go to stdout, the rest through logging)
    level = logger.log_level  # given back after: later tests read the logs at the process's level
    logger.setLevel("DEBUG")
    caplog.set_level(logging.DEBUG)
    try:
        # When the IBAN goes through the happy path, a refused BIC, a repeated PUT, a GET ...
        call(api, event("PUT", body=body()))
        call(api, event("PUT", body=body(bic="DEUTDEFFXXX")))
        call(api, event("PUT", body=body(iban=IBAN[:-1])))
        call(api, event("PUT", body=body()))
        call(api, event("GET"))
        # ... and an unexpected error (the KMS HMAC key is gone)
        kms.delete_alias(AliasName=settings().payout_accounts_mac_key)
        status, problem = call(api, event("PUT", body=body(account_holder="Books Limited")))
        assert status == 500, problem
    finally:
        logger.setLevel(level)
    # Then no log record, printed line or answer holds it in any form
    printed = capsys.readouterr()
    text = printed.out + printed.err + "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert "unexpected error" in text  # the error path did log
    assert not any(leak in text for leak in LEAKS), [leak for leak in LEAKS if leak in text]


def test_mark_invalid_racing_a_new_account_leaves_the_new_account_valid(api):
    # Given a payout paid to the registered account
    call(api, event("PUT", body=body()))
    paid_to = PayoutAccountsRepository().for_payout("seller_books", "EUR")
    other = PayoutAccountRequest.model_validate(body(iban=OTHER_IBAN, bic=None))
    # When its return marks the account invalid while the seller registers another account in between
    repo = RacingRepository(lambda: register("seller_books", other, PayoutAccountsRepository()))
    result = repo.mark_invalid("seller_books", "EUR", "AC04", iban_mac=paid_to.iban_mac)
    # Then the flag's write, conditional on the version it read, failed; read again, the account is another one
    assert result is not None and result.valid is True and result.version == 2
    stored = PayoutAccountsRepository().get("seller_books", "EUR")
    assert stored is not None and stored.valid is True and stored.iban_masked == "NL91 **** **** **43 00"
