"""The two HE modes as SVB runs them: encrypt a chunk's thresholds, turn results into decisions.

Both take the rule's integer total thresholds ``X`` (eligible iff ``S < X``) and give, per
slot, a decision and whether it is valid; an invalid slot is an integrity error for its
household, never a decision.

- :class:`MaskedScheme`: BFV, one ciphertext per 16,384 households; SVB decrypts
  ``r·(2(X − S) − 1) + e`` and keeps the sign (docs/he.md: what the magnitude leaks).
- :class:`StrictScheme`: BFV, an exact comparison; SVB decrypts exactly 0 or 1 per household.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from shared.errors import CryptoError
from shared.he import masked, strict
from shared.he.backend import SecretBfvContext, SecretMaskedContext

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
SecretContext = SecretMaskedContext | SecretBfvContext


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
    mode = "strict"

    def __init__(self, secret: SecretBfvContext) -> None:
        self._secret = secret
        self.parameter_set = secret.params.name
        self.slots = secret.params.slots

    def public_context(self) -> bytes:
        return self._secret.public_bytes()

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
