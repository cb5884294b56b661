"""The two HE modes as SVB runs them: encrypt a chunk's thresholds, turn results into decisions.

Both take the rule's integer total thresholds ``X`` (eligible iff ``S < X``) and give, per
slot, a decision and whether it is valid; an invalid slot is an integrity error for its
household, never a decision.

- :class:`MaskedScheme`: BFV, one ciphertext per 16,384 households; SVB decrypts
  ``r·(2(X − S) − 1) + e`` and keeps the sign (docs/he.md: what the magnitude leaks).
- :class:`StrictScheme`: BFV, an exact comparison; SVB decrypts exactly 0 or 1 per household.
  Its keys pass UWV's key check first (:meth:`StrictScheme.register`: cut-and-choose over
  key sets derived from the key file's seed, :mod:`shared.he.keysets`).

:meth:`ClientScheme.register` makes sure UWV holds the scheme's public context and returns
its digest, which the batch header names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from shared.digests import sha256_hex
from shared.errors import CryptoError
from shared.he import masked, strict
from shared.he.backend import SecretMaskedContext
from shared.he.keysets import StrictKeyFamily
from svb_client.wire.errors import ServerError
from svb_client.wire.transport import ScreeningTransport

if TYPE_CHECKING:
    from shared.he.backend import SecretBfvContext

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
SecretContext = SecretMaskedContext | StrictKeyFamily


@dataclass(frozen=True, slots=True)
class ChunkDecisions:
    eligible: BoolArray
    valid: BoolArray
    problems: dict[int, str]
    """Why a slot is invalid, per slot."""


class ClientScheme(Protocol):
    mode: str
    parameter_set: str
    slots: int

    def public_context(self) -> bytes:
        """What UWV gets: parameters and public keys only, never the secret key."""
        ...

    def register(self, transport: ScreeningTransport) -> tuple[str, bool]:
        """Make sure UWV holds the public context; (its digest, whether it was sent now)."""
        ...

    def check_thresholds(self, thresholds: IntArray, months: int) -> None:
        """Refuse thresholds the mode cannot represent (before anything is sent)."""
        ...

    def encrypt_chunk(self, thresholds: IntArray, months: int) -> list[bytes]: ...

    def decide_chunk(self, results: list[bytes], count: int, months: int) -> ChunkDecisions: ...


class MaskedScheme:
    mode = "masked"

    def __init__(self, secret: SecretMaskedContext) -> None:
        self._secret = secret
        self.parameter_set = secret.params.name
        self.slots = secret.params.slots

    def public_context(self) -> bytes:
        return self._secret.public_bytes()

    def register(self, transport: ScreeningTransport) -> tuple[str, bool]:
        public = self.public_context()
        digest = sha256_hex(public)
        return digest, transport.ensure_context(self.parameter_set, public, digest)

    def check_thresholds(self, thresholds: IntArray, months: int) -> None:
        masked.encode_thresholds(thresholds, months)

    def encrypt_chunk(self, thresholds: IntArray, months: int) -> list[bytes]:
        return [self._secret.encrypt(masked.encode_thresholds(thresholds, months))]

    def decide_chunk(self, results: list[bytes], count: int, months: int) -> ChunkDecisions:
        if len(results) != 1:
            raise CryptoError(f"a masked result has 1 ciphertext, got {len(results)}")
        values = self._secret.decrypt(results[0])[:count]
        if len(values) != count:
            raise CryptoError(f"the result holds {len(values)} slots, the chunk has {count}")
        slots = masked.decide(values, self._secret.params)
        problems = {
            int(i): str(masked.integrity_error(int(i), int(values[i])))
            for i in np.flatnonzero(~slots.valid)
        }
        return ChunkDecisions(slots.eligible, slots.valid, problems)


class StrictScheme:
    """Strict mode over a key family; the set in use is the one UWV's key check accepted
    (:meth:`StrictKeyFamily.accept` tells the key store, so the next run starts with that
    set and uploads nothing)."""

    mode = "strict"

    def __init__(self, family: StrictKeyFamily) -> None:
        self._family = family
        self.parameter_set = family.params.name
        self.slots = family.params.slots

    @property
    def _secret(self) -> SecretBfvContext:
        return self._family.selected()

    def public_context(self) -> bytes:
        return self._secret.public_bytes()

    def register(self, transport: ScreeningTransport) -> tuple[str, bool]:
        """The accepted set's digest; runs the key check if UWV holds no accepted set.

        1. A set accepted before (kept in the key file) that UWV still holds: nothing to send.
        2. A server that takes strict keys without a check (``strict_key_sets`` 0, or a file
           transport, which cannot ask): the set in use is sent as a plain context (a file
           request then needs a context UWV accepted online before).
        3. Otherwise the key check: propose K sets, open all but UWV's choice, use that one.
        """
        family = self._family
        if family.chosen is not None:
            public = self.public_context()
            digest = sha256_hex(public)
            if transport.has_context(digest):
                return digest, False
        key_sets = transport.server_info().strict_key_sets
        if key_sets == 0:
            public = self.public_context()
            digest = sha256_hex(public)
            return digest, transport.ensure_context(self.parameter_set, public, digest)
        contexts = family.public_contexts(key_sets)
        challenge = transport.propose_key_sets(self.parameter_set, contexts)
        if not 0 <= challenge.chosen < key_sets or challenge.key_sets != key_sets:
            raise ServerError(
                f"UWV chose key set {challenge.chosen} of {challenge.key_sets}; {key_sets} "
                "were proposed"
            )
        digest = transport.open_key_sets(
            challenge.proposal_id, family.openings(key_sets, challenge.chosen)
        )
        expected = sha256_hex(contexts[challenge.chosen])
        if digest != expected:
            raise ServerError(f"UWV accepted context {digest}, expected {expected}")
        family.accept(challenge.chosen)
        return digest, True

    def check_thresholds(self, thresholds: IntArray, months: int) -> None:
        strict.encode_total_thresholds(thresholds, months)

    def encrypt_chunk(self, thresholds: IntArray, months: int) -> list[bytes]:
        return strict.encrypt_thresholds(self._secret, thresholds, months)

    def decide_chunk(self, results: list[bytes], count: int, months: int) -> ChunkDecisions:
        if len(results) != 1:
            raise CryptoError(f"a strict result has 1 ciphertext, got {len(results)}")
        decisions = strict.decrypt_decisions(self._secret, results[0], count)
        problems = {
            int(i): str(err)
            for i, err in zip(
                np.flatnonzero(~decisions.valid), decisions.integrity_errors(), strict=True
            )
        }
        return ChunkDecisions(decisions.eligible, decisions.valid, problems)


def scheme_for(secret: SecretContext) -> ClientScheme:
    if isinstance(secret, SecretMaskedContext):
        return MaskedScheme(secret)
    return StrictScheme(secret)
