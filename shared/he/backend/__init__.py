"""Typed facade over TenSEAL and SEAL: the only package in the project that imports them.

- :mod:`._masked`: masked mode on BFV through SEAL's own API (``tenseal.sealapi``):
  :class:`SecretMaskedContext` (SVB) and :class:`PublicMaskedContext` (UWV), whose
  :meth:`~PublicMaskedContext.parse` refuses structurally invalid uploads before anything is
  charged and whose :meth:`~PublicMaskedContext.evaluate` re-randomises and floods answers.
- :mod:`._tenseal`: strict mode on TenSEAL's BFV vectors: :class:`SecretBfvContext` (SVB),
  :class:`PublicBfvContext` (UWV), :class:`BfvCiphertext` (the circuit's handle).
- :mod:`._seal`: the SEAL glue both use (bytes ⇄ objects, raw residues, the common random
  polynomial ``a`` public keys must carry).

Every TenSEAL/SEAL failure is turned into :class:`shared.errors.CryptoError` here.
"""

from shared.he.backend._masked import (
    MAX_MASKED_CIPHERTEXT_BYTES,
    MaskedInput,
    PublicMaskedContext,
    SecretMaskedContext,
    crs_a,
)
from shared.he.backend._seal import DEFAULT_CRS_SEED
from shared.he.backend._tenseal import (
    MAX_BFV_CIPHERTEXT_BYTES,
    MAX_CONTEXT_BYTES,
    BfvCiphertext,
    PublicBfvContext,
    SecretBfvContext,
)

__all__ = [
    "DEFAULT_CRS_SEED",
    "MAX_BFV_CIPHERTEXT_BYTES",
    "MAX_CONTEXT_BYTES",
    "MAX_MASKED_CIPHERTEXT_BYTES",
    "BfvCiphertext",
    "MaskedInput",
    "PublicBfvContext",
    "PublicMaskedContext",
    "SecretBfvContext",
    "SecretMaskedContext",
    "crs_a",
]
