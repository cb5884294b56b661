"""Ids as an attack surface: the same chunk on two streams at once, and ids of another mode."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.he.backend import SecretMaskedContext
from tests.attacks.conftest import (
    BYSTANDERS,
    VICTIM,
    Uwv,
    chunk_bytes,
    header_bytes,
    masked_ct,
    results,
)

pytestmark = pytest.mark.attack


def test_the_same_chunk_on_parallel_streams_is_evaluated_once(
    uwv: Uwv, secret_context: SecretMaskedContext
) -> None:
    """Six streams race the same batch id and chunk (each with its own thresholds): one
    evaluation, one charge, and every stream gets the same answer bytes."""

    def one(i: int) -> bytes:
        replies = results(
            uwv.screen(
                [
                    header_bytes(uwv, "race"),
                    chunk_bytes(0, [1], [VICTIM], [masked_ct(secret_context, [10_000 * i])]),
                ]
            )
        )
        assert not replies[0].HasField("error"), replies[0].error.message
        return bytes(replies[0].ciphertexts[0])

    with ThreadPoolExecutor(6) as pool:
        answers = set(pool.map(one, range(6)))
    assert len(answers) == 1
    assert uwv.used(VICTIM) == 1
    assert sum(e.budget.bsns_charged for e in uwv.entries()) == 1


def test_a_screening_batch_cannot_take_a_compute_to_data_run_id(
    uwv: Uwv, secret_context: SecretMaskedContext
) -> None:
    chunk = chunk_bytes(0, [1], [BYSTANDERS[0]], [masked_ct(secret_context, [1])])
    with pytest.raises(Exception, match="may not start with"):
        uwv.screen([header_bytes(uwv, "enclave:run-1"), chunk])
    assert uwv.used(BYSTANDERS[0]) == 0
