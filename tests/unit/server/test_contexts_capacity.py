"""Context storage (canonical form, aliases, quota) and the evaluator leases under the memory
bound, without a server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tenseal as ts

from shared.digests import sha256_hex
from shared.errors import CryptoError
from shared.he.backend import PublicBfvContext, SecretMaskedContext
from shared.he.params import MASKED_DEFAULT
from uwv_server.capacity import MB, CapacityExceeded, EvaluatorCache
from uwv_server.contexts import ContextQuota, ContextRegistry, QuotaExceeded


def _registry(path: Path, **kw: Any) -> ContextRegistry:
    """A registry that takes strict contexts without the key check (not what these test)."""
    return ContextRegistry(path, unsafe_trust_strict_keys=True, **kw)


def _varint(n: int) -> bytes:
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([byte])
        out += bytes([byte | 0x80])


def _hide(public: bytes, secret: bytes) -> bytes:
    """The public context with the secret one appended as an unknown protobuf field 111."""
    return public + _varint((111 << 3) | 2) + _varint(len(secret)) + secret


@pytest.fixture(scope="module")
def key() -> SecretMaskedContext:
    return SecretMaskedContext.generate(MASKED_DEFAULT)


def test_a_masked_key_with_appended_bytes_is_refused_and_nothing_is_stored(
    tmp_path: Path, key: SecretMaskedContext
) -> None:
    registry = _registry(tmp_path)
    evil = _hide(key.public_bytes(), key.secret_bytes())
    with pytest.raises(CryptoError, match="exactly one SEAL object"):
        registry.upload(MASKED_DEFAULT.name, evil)
    assert not list(tmp_path.glob("*.ctx"))


def test_a_secret_key_hidden_in_an_unknown_field_never_reaches_disk(
    tmp_path: Path, strict_secret_small: Any
) -> None:
    registry = _registry(tmp_path)
    # the secret key alone (the full secret context also holds the public key, which the
    # stored public context rightly holds too)
    secret = ts.context_from(strict_secret_small.secret_bytes()).serialize(
        save_public_key=False, save_secret_key=True, save_galois_keys=False, save_relin_keys=False
    )
    public = strict_secret_small.public_bytes()
    name = strict_secret_small.params.name
    evil = _hide(public, secret)
    digest, known = registry.upload(name, evil)
    assert (digest, known) == (sha256_hex(evil), False)
    probe = secret[len(secret) // 2 : len(secret) // 2 + 64]
    for path in tmp_path.iterdir():
        assert probe not in path.read_bytes(), path
    # the digest the client sent still names the (canonical) context, also after a restart
    again = _registry(tmp_path)
    assert again.known(digest)
    stored = again.get(digest).canonical_bytes()
    assert PublicBfvContext(stored, name).holds_secret_key is False
    registry.close()
    again.close()


def test_re_upload_is_idempotent_and_shares_one_evaluator(
    tmp_path: Path, key: SecretMaskedContext, strict_secret_small: Any
) -> None:
    registry = ContextRegistry(
        tmp_path, unsafe_trust_strict_keys=True, quota=ContextQuota(max_contexts=2)
    )
    public = key.public_bytes()
    assert registry.upload(MASKED_DEFAULT.name, public, "SVB")[1] is False
    assert registry.upload(MASKED_DEFAULT.name, public, "SVB")[1] is True
    a = registry.acquire(sha256_hex(public), "masked")
    b = registry.acquire(sha256_hex(public), "masked")
    assert a.evaluator is b.evaluator
    a.release()
    b.release()
    # another serialisation of the same strict context is the same stored context: no new quota
    strict = strict_secret_small.public_bytes()
    name = strict_secret_small.params.name
    assert registry.upload(name, strict, "SVB")[1] is False
    assert registry.upload(name, _hide(strict, b"x" * 10), "SVB")[1] is True
    assert registry.usage("SVB")[0] == 2


def test_quota_per_caller(
    tmp_path: Path, key: SecretMaskedContext, strict_secret_small: Any
) -> None:
    strict = strict_secret_small.params.name
    registry = ContextRegistry(
        tmp_path, unsafe_trust_strict_keys=True, quota=ContextQuota(max_contexts=1)
    )
    registry.upload(MASKED_DEFAULT.name, key.public_bytes(), "SVB")
    with pytest.raises(QuotaExceeded, match="quota is 1 contexts"):
        registry.upload(strict, strict_secret_small.public_bytes(), "SVB")
    assert not list(tmp_path.glob(f"{sha256_hex(strict_secret_small.public_bytes())}*"))
    # another caller has its own quota
    registry.upload(strict, strict_secret_small.public_bytes(), "Gemeente X")
    assert _registry(tmp_path).usage("SVB")[0] == 1  # owners survive a restart


class FakeEvaluator:
    mode = "strict"
    slots = 1
    parameter_set = "fake"

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_leased_evaluators_are_never_evicted_and_new_ones_are_refused() -> None:
    cache = EvaluatorCache(limit_bytes=100 * MB)
    made: list[FakeEvaluator] = []

    def make() -> FakeEvaluator:
        made.append(FakeEvaluator())
        return made[-1]

    first = cache.acquire("a", make, 60 * MB, workers=2)
    with pytest.raises(CapacityExceeded, match="memory bound of 100 MB"):
        cache.acquire("b", make, 60 * MB, workers=2)
    assert not made[0].closed  # the running batch's evaluator is untouched
    second = cache.acquire("a", make, 60 * MB, workers=2)  # shared: no new memory
    assert second.evaluator is first.evaluator and len(made) == 1
    assert cache.stats() == (1, 2)
    first.release()
    second.release()
    third = cache.acquire("b", make, 60 * MB, workers=2)  # "a" is idle now: evicted
    assert made[0].closed and not made[1].closed
    third.release()
    third.release()  # releasing twice is harmless
    assert cache.leases("b") == 0
    assert cache.reserved_bytes == 60 * MB


def test_an_evaluator_that_fails_to_build_gives_its_reservation_back() -> None:
    cache = EvaluatorCache(limit_bytes=100 * MB)

    def broken() -> FakeEvaluator:
        raise RuntimeError("no processes")

    with pytest.raises(RuntimeError):
        cache.acquire("a", broken, 60 * MB)
    assert cache.reserved_bytes == 0
    assert np.isfinite(cache.reserved_bytes)


def test_measured_memory_counts_when_it_is_above_the_estimates() -> None:
    """The estimates miss what they do not model (store caches, chunks in flight); the
    process tree's resident memory, measured, is counted when it is the larger figure."""
    resident = [10 * MB]
    cache = EvaluatorCache(limit_bytes=100 * MB, measure=lambda: resident[0])
    first = cache.acquire("a", FakeEvaluator, 30 * MB)  # estimates 30, resident 10: fits
    resident[0] = 80 * MB  # the server grew beyond what was reserved
    with pytest.raises(CapacityExceeded, match="80 MB resident"):
        cache.acquire("b", FakeEvaluator, 30 * MB)
    again = cache.acquire("a", FakeEvaluator, 30 * MB)
    assert again.evaluator is first.evaluator  # shared: no new memory, so not refused
    first.release()
    again.release()
    # an idle evaluator is closed to make room, counted at its estimate
    resident[0] = 60 * MB
    second = cache.acquire("b", FakeEvaluator, 60 * MB)
    assert isinstance(first.evaluator, FakeEvaluator) and first.evaluator.closed
    assert not second.evaluator.closed  # type: ignore[attr-defined]
