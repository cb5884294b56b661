"""The process pool gives the same results as in-process evaluation, in order."""

from __future__ import annotations

import numpy as np
import pytest

from shared.errors import CryptoError
from shared.he import strict
from shared.he.backend import PublicBfvContext, SecretBfvContext
from shared.he.parallel import StrictEvaluatorPool
from shared.he.params import STRICT_BFV_N8192

PARAMS = STRICT_BFV_N8192


def test_pool_matches_in_process_decisions() -> None:
    secret = SecretBfvContext.generate(PARAMS)
    public = PublicBfvContext(secret.public_bytes(), PARAMS.name)
    rng = np.random.default_rng(11)
    chunks = []
    for size in (5, 17, 3):
        t = 6 * rng.integers(-(2**20), 2**20 + 1, size)
        s = t + rng.integers(-1, 2, size)
        chunks.append((strict.encrypt_thresholds(secret, t, 6), s, t))
    with StrictEvaluatorPool(secret.public_bytes(), PARAMS.name, workers=2) as pool:
        results = pool.evaluate([(cts, s) for cts, s, _ in chunks])
    for (cts, s, t), pooled in zip(chunks, results, strict=True):
        local = strict.evaluate_chunk(public, cts, s)
        a = strict.decrypt_decisions(secret, pooled, len(s))
        b = strict.decrypt_decisions(secret, local, len(s))
        assert a.valid.all() and b.valid.all()
        np.testing.assert_array_equal(a.eligible, b.eligible)
        np.testing.assert_array_equal(a.eligible, strict.plaintext_decisions(t, s))


def test_pool_refuses_a_secret_context_before_starting_workers() -> None:
    secret = SecretBfvContext.generate(PARAMS)
    with pytest.raises(CryptoError, match="secret key"):
        StrictEvaluatorPool(secret.secret_bytes(), PARAMS.name)
