"""functions.registry is the one list of functions: it matches the code, the ASL files and the tables."""

from __future__ import annotations

import re
from pathlib import Path

from functions import registry
from payments.kernel.config import Settings
from payments.kernel.tables import TABLES
from payments.payin.recovery import INDEX as RECOVERY_INDEX

ROOT = Path(__file__).resolve().parents[3]
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def test_every_function_folder_is_a_registry_entry_and_back():
    # Given the folders of functions/ that hold a handler
    folders = {p.parent.name for p in (ROOT / "functions").glob("*/handler.py")}
    # Then each is exactly one entry of the registry, and each entry has its folder
    assert folders == set(registry.BY_NAME)
    assert len(registry.FUNCTIONS) == len(registry.BY_NAME) == len(registry.BY_LOCAL_NAME)


def test_every_asl_placeholder_is_filled_by_exactly_one_registered_function():
    # Given every ${...} placeholder of the state machines
    for asl in (registry.PAYMENT_ASL, registry.RECONCILE_ASL, registry.RECONCILE_ATHENA_ASL, registry.REFUND_ASL):
        placeholders = set(PLACEHOLDER.findall((ROOT / "stepfunctions" / asl).read_text()))
        # Then the registry names a function for each, and no placeholder the file does not have
        assert placeholders and set(registry.asl_functions(asl)) == placeholders
    declared = [(file, p) for f in registry.FUNCTIONS for file, p in f.asl_placeholders]
    assert len(declared) == len(set(declared))


def test_declared_tables_settings_and_indexes_exist():
    # Given the tables of payments.kernel.tables and the settings model
    tables = {t.setting: t for t in TABLES}
    for spec in registry.FUNCTIONS:
        for access in spec.tables:
            # Then every table access names a table, and only indexes that table has
            assert access.setting in tables, (spec.name, access.setting)
            assert set(access.indexes) <= {i.name for i in tables[access.setting].indexes}, spec.name
            assert access.actions and all(not a.startswith("dynamodb:") for a in access.actions)
        # and every other setting is a field of the model
        assert set(spec.settings) <= set(Settings.model_fields), spec.name
    # and the recovery function queries the index payments.payin.recovery reads
    assert registry.RECOVERY.tables[0].indexes == (RECOVERY_INDEX,)


def test_the_local_runtime_dispatches_every_registered_function():
    # Given the in-process dispatcher's table of handlers
    from payments_dev.local.lambdas import FUNCTIONS

    # Then it is the registry's functions, by their local names, on their handler modules
    assert {f.local_name: f"{f.module}:handler" for f in registry.FUNCTIONS} == FUNCTIONS
