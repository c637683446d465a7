"""Settings: validated once at cold start, every variable a function needs required in a deployed stage."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from functions import registry
from payments.kernel.config import STAGE_ENV, MissingSettings, Settings, env_name, load, missing_settings

ROOT = Path(__file__).resolve().parents[3]


def _deployed_env(spec: registry.Function, psp: registry.Psp = "simulated") -> dict[str, str]:
    """What the CDK sets on ``spec`` in a stage: every required variable (placeholder values) and the marker."""
    values = {
        "wallet_shards": "4",
        "ledger_total_shards": "8",
        "adyen_secret_max_age": "300",
        "payments_psp": "simulator",
    }
    env = {env_name(f): values.get(f, f"value-of-{f}") for f in spec.required_settings(psp)}
    env[STAGE_ENV] = "dev"
    return env


def test_a_variable_name_is_the_settings_field_upper_cased():
    # Given the settings model, then each field's variable is its name upper-cased
    assert env_name("payments_table") == "PAYMENTS_TABLE"
    assert STAGE_ENV == "PAYMENTS_STAGE"
    # and a name that is not a field is refused rather than invented
    with pytest.raises(KeyError, match="not a field"):
        env_name("payments_tabel")


@pytest.mark.parametrize("spec", registry.FUNCTIONS, ids=lambda f: f.name)
def test_a_deployed_function_without_one_of_its_variables_fails_naming_it(spec):
    # Given the environment the stage gives the function, with each required variable removed in turn
    for missing in sorted(_deployed_env(spec)):
        if missing == STAGE_ENV:
            continue
        env = _deployed_env(spec)
        del env[missing]
        # When its settings are loaded at cold start
        with pytest.raises(MissingSettings) as raised:
            load(spec, env)
        # Then the error names exactly the missing variable and the function
        assert missing in str(raised.value) and repr(spec.name) in str(raised.value)
        assert missing_settings(spec, env) == [missing]


def test_an_empty_variable_is_missing_too():
    # Given a deployed wallet whose WALLET_SHARDS is set but empty
    env = _deployed_env(registry.WALLET) | {"WALLET_SHARDS": " "}
    # Then its cold start fails naming it
    with pytest.raises(MissingSettings, match="WALLET_SHARDS"):
        load(registry.WALLET, env)


def test_a_complete_deployed_environment_loads_its_values():
    # Given the reconcile function's complete deployed environment
    env = _deployed_env(registry.RECONCILE) | {"WALLET_SHARDS": "7"}
    # When it is loaded, then the values are the environment's, not the model's defaults
    settings = load(registry.RECONCILE, env)
    assert settings.wallet_shards == 7
    assert settings.settlement_bucket == "value-of-settlement_bucket"
    assert settings.payments_stage == "dev"


def test_a_malformed_value_is_refused_naming_its_field():
    # Given a deployed wallet with zero balance shards
    env = _deployed_env(registry.WALLET) | {"WALLET_SHARDS": "0"}
    # Then loading fails on the field
    with pytest.raises(ValidationError, match="wallet_shards"):
        load(registry.WALLET, env)


def test_outside_a_deployed_stage_nothing_is_required():
    # Given no stage marker (local runtime, tests, the operator's CLI) and no variable at all
    settings = load(registry.WALLET, {})
    # Then the settings load (what the local runtime does not set explicitly keeps the model's value)
    assert isinstance(settings, Settings)


def test_the_simulated_psp_table_is_required_only_with_the_simulator():
    # Given the executor on a stage charging through Adyen: no PSP table there
    env = _deployed_env(registry.EXECUTOR, "adyen") | {"PAYMENTS_PSP": "adyen"}
    assert "PSP_TABLE" not in env
    # Then nothing is missing; with the simulator, the PSP table is
    assert missing_settings(registry.EXECUTOR, env) == []
    assert missing_settings(registry.EXECUTOR, env | {"PAYMENTS_PSP": "simulator"}) == ["PSP_TABLE"]


def test_a_handler_cold_start_fails_in_a_deployed_stage_without_its_variables():
    # Given a Lambda-like process of a deployed stage whose wallet function has none of its variables
    env = {k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME", "SYSTEMROOT")}
    env |= {"AWS_DEFAULT_REGION": "us-east-1", STAGE_ENV: "dev", "PYTHONPATH": str(ROOT)}
    # When the handler module is imported (the cold start)
    command = [sys.executable, "-c", "import functions.wallet.handler"]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    # Then the import fails with an error naming every missing variable
    assert result.returncode != 0
    assert "MissingSettings" in result.stderr
    for variable in ("PAYMENTS_TABLE", "WALLETS_TABLE", "WALLET_SHARDS"):
        assert variable in result.stderr


def test_the_local_runtime_sets_every_setting_explicitly():
    # Given the local runtime's settings (without starting it)
    from payments_dev.local.runtime import LOCAL_SETTINGS, RUN_SETTINGS

    # Then every field of the model has an explicit local value (none is left to the model's default)
    assert set(LOCAL_SETTINGS) | set(RUN_SETTINGS) == set(Settings.model_fields)
    assert not set(LOCAL_SETTINGS) & set(RUN_SETTINGS)
