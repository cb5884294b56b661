"""Named HE parameter sets, each with its security level, depth and measured precision.

Security follows the HomomorphicEncryption.org standard table (ternary secret, classical
128-bit): for ring dimension N the total coefficient modulus may be at most
N=4096: 109 bits, N=8192: 218 bits, N=16384: 438 bits, N=32768: 881 bits.
Every set below is checked against that table by :func:`check_security` (and by a test).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shared.errors import CryptoError

MAX_MODULUS_BITS_128: Final[dict[int, int]] = {4096: 109, 8192: 218, 16384: 438, 32768: 881}
"""Largest total coefficient modulus (bits) giving 128-bit classical security, per ring dimension."""


@dataclass(frozen=True, slots=True)
class CkksParams:
    """A CKKS parameter set.

    ``coeff_mod_bit_sizes`` lists the primes: the first is the decryption prime, the last is the
    special (key-switching) prime, the middle ones are the rescaling levels.
    """

    name: str
    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    scale_bits: int
    mask_log2_range: int
    """Masks are ``2**U(0, mask_log2_range)``: the largest range with a 100x margin to the
    precision cliff measured for this set (see docs/he.md)."""

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def modulus_bits(self) -> int:
        return sum(self.coeff_mod_bit_sizes)

    @property
    def depth(self) -> int:
        """Number of rescalings (plaintext or ciphertext multiplications) the set allows."""
        return len(self.coeff_mod_bit_sizes) - 2


def check_security(poly_modulus_degree: int, modulus_bits: int) -> None:
    """Raise :class:`CryptoError` unless the pair gives 128-bit security."""
    limit = MAX_MODULUS_BITS_128.get(poly_modulus_degree)
    if limit is None:
        raise CryptoError(
            f"ring dimension {poly_modulus_degree} is not one of {sorted(MAX_MODULUS_BITS_128)}"
        )
    if modulus_bits > limit:
        raise CryptoError(
            f"coefficient modulus of {modulus_bits} bits at N={poly_modulus_degree} gives less than "
            f"128-bit security (at most {limit} bits allowed)"
        )


MASKED_N8192: Final = CkksParams(
    name="ckks-masked-n8192",
    poly_modulus_degree=8192,
    # 200 bits <= 218: 128-bit security. One rescaling level (the mask multiplication);
    # the extra 40-bit prime keeps 2**59 of headroom after it, so masked values
    # r * (T - I) with |T - I| <= 2**21 cents and r <= 2**24 never wrap.
    coeff_mod_bit_sizes=(60, 40, 40, 60),
    scale_bits=40,
    # Measured: relative error 2.7e-3 at 2**24 (margin ~360x before a sign can flip),
    # first wrong signs at 2**34. See tests/unit/test_masked_precision.py.
    mask_log2_range=24,
)

PARAMETER_SETS: Final[dict[str, CkksParams]] = {MASKED_N8192.name: MASKED_N8192}


def parameter_set(name: str) -> CkksParams:
    """Look up a named parameter set; unknown names raise :class:`CryptoError`."""
    try:
        params = PARAMETER_SETS[name]
    except KeyError:
        raise CryptoError(
            f"unknown parameter set {name!r}; known: {', '.join(sorted(PARAMETER_SETS))}"
        ) from None
    check_security(params.poly_modulus_degree, params.modulus_bits)
    return params
