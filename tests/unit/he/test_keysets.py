"""Strict key sets derived from a seed (issue 14): deterministic, well formed, and exact.

The cut-and-choose key check rests on these: UWV regenerates a revealed set with the same code
and compares bytes, so the derivation must give the same bytes in two derivations and in two
processes; and a derived set must decide every household exactly (its relinearisation keys are
built by hand in NTT form).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
import tenseal as ts

from shared.errors import CryptoError
from shared.he import strict
from shared.he.backend import DEFAULT_CRS_SEED, PublicBfvContext, SecretBfvContext
from shared.he.backend._keyset import check_relin_keys, relin_key_crs, relin_key_polys
from shared.he.keysets import StrictKeyFamily, catch_probability, check_key_sets, set_seed
from shared.he.params import STRICT_BFV_N8192 as PARAMS

SEED = bytes(range(32))


@pytest.fixture(scope="module")
def key_set() -> SecretBfvContext:
    return SecretBfvContext(PARAMS, SEED)


def test_same_seed_same_bytes_in_one_process(key_set: SecretBfvContext) -> None:
    again = SecretBfvContext(PARAMS, SEED)
    assert again.public_bytes() == key_set.public_bytes()
    other = SecretBfvContext(PARAMS, bytes(31) + b"\x01")
    assert other.public_bytes() != key_set.public_bytes()


def test_same_seed_same_bytes_in_another_process(key_set: SecretBfvContext) -> None:
    code = (
        "import hashlib,sys;from shared.he.backend import SecretBfvContext;"
        "from shared.he.params import STRICT_BFV_N8192 as P;"
        "sys.stdout.write(hashlib.sha256(SecretBfvContext(P, bytes(range(32)))"
        ".public_bytes()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == hashlib.sha256(key_set.public_bytes()).hexdigest()


def test_every_component_on_its_common_polynomial(key_set: SecretBfvContext) -> None:
    public = PublicBfvContext(key_set.public_bytes(), PARAMS.name)  # checks pk and relin keys
    components = relin_key_polys(ts.context_from(public.canonical_bytes()))
    expected = relin_key_crs(PARAMS, DEFAULT_CRS_SEED)
    assert len(components) == len(expected) == len(PARAMS.coeff_mod_bit_sizes) - 1
    for polys, a in zip(components, expected, strict=True):
        assert np.array_equal(polys[1], a)
    # independent randomness per component: no two first parts share their error
    firsts = [p[0].tobytes() for p in components]
    assert len(set(firsts)) == len(firsts)
    check_relin_keys(ts.context_from(public.canonical_bytes()), PARAMS, DEFAULT_CRS_SEED)


def test_a_derived_set_decides_exactly(key_set: SecretBfvContext) -> None:
    public = PublicBfvContext(key_set.public_bytes(), PARAMS.name)
    months = 12
    x = np.array([150_000, 150_000, 150_000, -3, 0, 2**20], dtype=np.int64) * months
    s = np.array([150_000 * 12 - 1, 150_000 * 12, 150_000 * 12 + 1, -37, 0, 2**40])
    cts = strict.encrypt_thresholds(key_set, x, months)
    result = strict.evaluate_chunk(public, cts, s)
    decisions = strict.decrypt_decisions(key_set, result, len(x))
    assert decisions.valid.all()
    assert (decisions.eligible == strict.plaintext_decisions(x, s)).all()
    assert key_set.unsafe_noise_budget_bits(result) >= 8


def test_family_seeds_and_openings() -> None:
    family = StrictKeyFamily(PARAMS, SEED)
    assert family.seed(0) == set_seed(SEED, 0) != family.seed(1)
    openings = family.openings(4, 2)
    assert openings[2] == b"" and [len(o) for o in openings] == [32, 32, 0, 32]
    with pytest.raises(CryptoError, match="outside"):
        family.openings(4, 4)
    with pytest.raises(CryptoError, match="2 to 32"):
        check_key_sets(1)
    assert catch_probability(8) == 0.875
    seen: list[int] = []
    family.on_chosen = seen.append
    family.accept(3)
    family.accept(3)
    assert family.chosen == 3 and seen == [3]
    with pytest.raises(CryptoError, match="32 bytes"):
        StrictKeyFamily(PARAMS, b"short")
