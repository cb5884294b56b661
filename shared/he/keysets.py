"""Cut-and-choose over strict-mode key sets (issue 14): what both sides compute.

Strict mode multiplies ciphertexts and relinearises them with SVB's keys. A malformed
relinearisation key (``b_i = −a_i·s + e_i + F_i·s² + F_i·Z``) makes the answer decrypt to the
bit plus ``c2·Z``, a function of which of SVB's ciphertexts UWV multiplied, i.e. of UWV's
digits; flooding does not hide that, it sits in the message. UWV cannot check a key's error
part directly, so it checks key *sets* by cut-and-choose (covert security):

1. SVB derives ``K`` key sets from ``K`` independent seeds (:meth:`StrictKeyFamily.seed`) and
   uploads all ``K`` public contexts: that upload is its commitment.
2. UWV answers with an index ``j`` it draws itself (``secrets``), never from the message.
3. SVB reveals the ``K − 1`` other seeds (:meth:`StrictKeyFamily.openings`).
4. UWV regenerates those sets (:func:`regenerate_public_bytes`, the same code SVB used) and
   compares their canonical bytes with the upload. On a match set ``j`` is accepted for
   screening; else the upload is refused and the cheat is logged under SVB's identity.

A dishonest SVB that malforms one of its ``K`` sets escapes only if ``j`` is that set: with
probability ``1/K`` (:func:`catch_probability` = ``(K − 1)/K``; ``K = 8``: 87.5%). Malforming
more sets only helps UWV (every one but ``j`` is opened). It cannot resample ``j``: an
identical re-proposal gets the same ``j``, and a different one while a challenge is open is
a logged failure (:mod:`uwv_server.key_checks`).

The set seeds come from one 32-byte master seed (SVB's key file keeps only that), so revealing
set seeds reveals nothing about the others or the master (SHAKE-256 is one-way).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Final

from shared.errors import CryptoError
from shared.he.backend import DEFAULT_CRS_SEED, SecretBfvContext
from shared.he.backend._keyset import SEED_BYTES, derive_key_set
from shared.he.params import BfvParams

DEFAULT_KEY_SETS: Final = 8
"""``K`` unless the operator sets another: a cheat is caught with probability 7/8. Measured
cost per set at N=16384 on this machine: ~1.8 s to derive, 6.4 MB to upload (docs/he.md)."""
MAX_KEY_SETS: Final = 32
"""An upload of 32 N=16384 contexts is ~200 MB; more buys little (31/32 already)."""
_SET_LABEL: Final = b"aio-screening/v1/strict-key-set-seed"


def catch_probability(key_sets: int) -> float:
    """The probability that a key check over ``key_sets`` sets catches one malformed set."""
    return (key_sets - 1) / key_sets


def check_key_sets(key_sets: int) -> int:
    """``key_sets`` if it is a usable ``K`` (2 to :data:`MAX_KEY_SETS`); else CryptoError."""
    if not 2 <= key_sets <= MAX_KEY_SETS:
        raise CryptoError(
            f"the key check needs 2 to {MAX_KEY_SETS} key sets (K), got {key_sets}: with K "
            f"sets a malformed one is caught with probability (K-1)/K"
        )
    return key_sets


def set_seed(master: bytes, index: int) -> bytes:
    """The seed of key set ``index`` of the family ``master``."""
    if len(master) != SEED_BYTES:
        raise CryptoError(f"a master seed is {SEED_BYTES} bytes, got {len(master)}")
    return hashlib.shake_256(_SET_LABEL + index.to_bytes(4, "big") + master).digest(SEED_BYTES)


def regenerate_public_bytes(params: BfvParams, seed: bytes, crs_seed: bytes) -> bytes:
    """UWV: the public context a revealed seed must have produced."""
    return derive_key_set(params, seed, crs_seed).public_bytes


class StrictKeyFamily:
    """SVB's strict key: a master seed, the key sets derived from it, and which set UWV
    accepted (``chosen``, None until a key check has chosen one)."""

    def __init__(
        self,
        params: BfvParams,
        master: bytes,
        *,
        crs_seed: bytes = DEFAULT_CRS_SEED,
        chosen: int | None = None,
    ) -> None:
        set_seed(master, 0)  # checks the length
        self.params = params
        self.master = master
        self.crs_seed = crs_seed
        self.chosen = chosen
        self.on_chosen: Callable[[int], None] | None = None
        """Told the accepted set's index when it changes (SVB's key store keeps it)."""
        self._sets: dict[int, SecretBfvContext] = {}

    @classmethod
    def generate(
        cls,
        params: BfvParams,
        *,
        crs_seed: bytes = DEFAULT_CRS_SEED,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> StrictKeyFamily:
        return cls(params, random_bytes(SEED_BYTES), crs_seed=crs_seed)

    def seed(self, index: int) -> bytes:
        return set_seed(self.master, index)

    def key_set(self, index: int) -> SecretBfvContext:
        """Set ``index`` (derived once per process, ~1.8 s at N=16384)."""
        if index not in self._sets:
            self._sets[index] = SecretBfvContext(self.params, self.seed(index), self.crs_seed)
        return self._sets[index]

    def public_contexts(self, key_sets: int) -> list[bytes]:
        """The commitment: the public contexts of sets ``0 .. K−1``."""
        return [self.key_set(k).public_bytes() for k in range(check_key_sets(key_sets))]

    def openings(self, key_sets: int, chosen: int) -> list[bytes]:
        """What SVB reveals for challenge ``chosen``: every seed but that set's (empty)."""
        if not 0 <= chosen < key_sets:
            raise CryptoError(f"challenge index {chosen} is outside 0..{key_sets - 1}")
        return [b"" if k == chosen else self.seed(k) for k in range(key_sets)]

    def accept(self, chosen: int) -> None:
        """UWV's key check accepted set ``chosen``: use it from now on."""
        if chosen != self.chosen:
            self.chosen = chosen
            if self.on_chosen is not None:
                self.on_chosen(chosen)

    def selected(self) -> SecretBfvContext:
        """The accepted set, or set 0 before any key check (e.g. a server trusting keys)."""
        return self.key_set(0 if self.chosen is None else self.chosen)
