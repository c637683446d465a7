"""The identifier rule, one for every id the system is given or hands on.

An identifier (``checkout_id``, ``payment_order_id``, ``seller_account``, ``buyer_id``,
``refund_id``, ``payout_id``) is 1-64 characters of ``[A-Za-z0-9_-]`` that starts with a letter
or a digit. The same rule holds wherever the id travels: the API's bodies and paths, the PSP's
references (``merchantReference``), the settlement files' merchant references, the reports.

Why so plain: identifiers become DynamoDB keys, Step Functions execution names (<= 80 characters,
no spaces or specials), PSP idempotency keys and references, and fields of CSV reports, where a
leading ``-`` (or ``=``, ``+``, ``@``) makes a spreadsheet evaluate the cell; a leading ``_`` is
refused with it so that the first character is always a letter or a digit.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field

#: the most characters an identifier has
MAX_IDENTIFIER_LENGTH = 64
#: the rule as a regular expression (anchored), as the OpenAPI document shows it
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
IDENTIFIER_RE = re.compile(IDENTIFIER_PATTERN)
#: the rule in words, for the descriptions and the problems that name a field breaking it
IDENTIFIER_RULE = "1-64 ASCII letters, digits, '_' and '-', starting with a letter or a digit"


#: a payout's id is also its SEPA credit transfer's EndToEndId (ISO 20022 Max35Text): the rule, cut to 35
MAX_PAYOUT_ID_LENGTH = 35
PAYOUT_ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_-]{{0,{MAX_PAYOUT_ID_LENGTH - 1}}}$"
PAYOUT_ID_RULE = (
    f"1-{MAX_PAYOUT_ID_LENGTH} ASCII letters, digits, '_' and '-', starting with a letter or a digit "
    "(it is the bank transfer's EndToEndId)"
)


def is_identifier(value: object) -> bool:
    """Whether ``value`` is a string that follows the identifier rule."""
    return isinstance(value, str) and IDENTIFIER_RE.fullmatch(value) is not None


def identifier_field(description: str = "", *, after: str = "") -> Any:
    """A pydantic ``Field`` holding the identifier rule; its description is ``description``, the
    rule in words, then ``after``."""
    text = " ".join(part for part in (description, IDENTIFIER_RULE[0].upper() + IDENTIFIER_RULE[1:] + ".") if part)
    return Field(min_length=1, max_length=MAX_IDENTIFIER_LENGTH, pattern=IDENTIFIER_PATTERN, description=text + after)


#: an identifier, as a pydantic type
Identifier = Annotated[str, identifier_field()]
