"""The reconcile function's /tmp is sized from the largest file one invocation holds, at the measured rates."""

from __future__ import annotations

from dataclasses import replace

import pytest

from infra.constructs.reconciliation import (
    LAMBDA_MAX_EPHEMERAL_MIB,
    RECONCILE_EPHEMERAL_STORAGE,
    TMP_HEADROOM,
    reconcile_ephemeral_storage,
)
from payments.reconciliation.model import MERGE_TMP_PER_FILE_BYTE, Bounds, tmp_peak_bytes


def test_the_deployed_tmp_holds_the_merge_of_the_largest_file_below_athena_twice_over() -> None:
    # Given the bounds every stage deploys: files above athena_above_bytes go to Athena, below it one function
    # merges the Distributed Map's chunks of the whole file
    bounds = Bounds()
    # Then the storage holds that merge's measured peak with the headroom, and Lambda gives that much
    need = bounds.athena_above_bytes * MERGE_TMP_PER_FILE_BYTE
    assert tmp_peak_bytes(bounds) == int(need)
    assert RECONCILE_EPHEMERAL_STORAGE.to_mebibytes() * 2**20 >= need * TMP_HEADROOM
    assert RECONCILE_EPHEMERAL_STORAGE.to_mebibytes() == 10240 == LAMBDA_MAX_EPHEMERAL_MIB


def test_a_bound_whose_files_would_not_fit_any_function_s_tmp_fails_synthesis_naming_it() -> None:
    # Given the Athena threshold raised to 4 GiB of file (a merge of about 8 GiB, twice that with the headroom)
    bounds = replace(Bounds(), athena_above_bytes=4 * 2**30)
    # When the function's storage is sized, Then synthesis stops and names the bound to lower
    with pytest.raises(ValueError, match=r"Bounds\.athena_above_bytes \(4294967296 bytes\).*at most 10240 MiB"):
        reconcile_ephemeral_storage(bounds)
