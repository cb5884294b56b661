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
"""Largest coefficient modulus (bits) for 128-bit classical security, per ring dimension."""

FLOOD_STATISTICAL_BITS: Final = 40
"""Noise flooding must make the flooding noise at least 2**40 times the circuit's noise
(strict), or hide the answer's noise at statistical distance 2**-40 (masked)."""


@dataclass(frozen=True, slots=True)
class MaskedParams:
    """A BFV parameter set for the masked comparison (see :mod:`shared.he.masked`).

    Integers only: there is no imaginary part or scale to abuse. ``coeff_mod_bit_sizes`` lists
    the primes (the last is SEAL's special prime, absent from ciphertexts);
    ``plain_modulus_bits`` the size of the batching prime ``t`` (found deterministically by
    SEAL); SVB decrypts ``v = r·(2d − 1) + e`` with ``1 ≤ r < 2**mask_log2_range``, which must
    stay below ``t/2`` for every total in the public band (checked here).

    The server floods every answer's noise with a uniform integer polynomial of width
    ``2**flood_log2`` and switches it down to ``result_primes`` primes before sending.
    ``honest_noise_log2`` is the measured bound on an honest answer's noise before flooding
    (``tests/unit/he/test_masked_bfv.py`` re-measures it).
    """

    name: str
    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    plain_modulus_bits: int
    mask_log2_range: int
    honest_noise_log2: int
    flood_margin_bits: int
    result_primes: int

    def __post_init__(self) -> None:
        check_security(self.poly_modulus_degree, self.modulus_bits)
        band = 4 * MASKED_TOTAL_BAND_CENTS + 4
        if (band << self.mask_log2_range).bit_length() >= self.plain_modulus_bits - 1:
            raise CryptoError(
                f"{self.name}: masked values reach 2**{(band << self.mask_log2_range).bit_length()}"
                f", more than t/2 >= 2**{self.plain_modulus_bits - 2} allows"
            )
        if self.hidden_noise_bits < 0:
            raise CryptoError(
                f"{self.name}: flooding cannot hide an honest answer's noise at "
                f"2**-{FLOOD_STATISTICAL_BITS} (short by {-self.hidden_noise_bits:.0f} bits)"
            )
        if not 1 <= self.result_primes < len(self.coeff_mod_bit_sizes):
            raise CryptoError(
                f"{self.name}: result_primes must be 1..{len(self.coeff_mod_bit_sizes) - 1}"
            )

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree

    @property
    def modulus_bits(self) -> int:
        return sum(self.coeff_mod_bit_sizes)

    @property
    def delta_log2(self) -> int:
        """A lower bound on ``log2(q/t)`` for the data modulus ``q`` at the first level.

        Every ``b``-bit prime exceeds ``2**(b−1)`` and ``t < 2**plain_modulus_bits``; the backend
        checks the real primes against this bound.
        """
        data = self.coeff_mod_bit_sizes[:-1]
        return sum(data) - len(data) - self.plain_modulus_bits

    @property
    def flood_log2(self) -> int:
        """The flood is uniform in ``[−2**flood_log2, 2**flood_log2]`` per coefficient."""
        return self.delta_log2 - self.flood_margin_bits

    @property
    def hidden_noise_bits(self) -> float:
        """Bits of noise above an honest answer's that the flood still hides at 2**-40.

        Statistical distance of the flooded noise from the flood alone is at most
        ``N · |x| / 2**(flood_log2 + 1)`` for a noise polynomial with ``|x|∞ = 2**x``; it is
        below ``2**-FLOOD_STATISTICAL_BITS`` while ``x ≤ flood_log2 + 1 − log2 N − 40``.
        """
        log_n = self.poly_modulus_degree.bit_length() - 1
        ceiling = self.flood_log2 + 1 - log_n - FLOOD_STATISTICAL_BITS
        return float(ceiling - self.honest_noise_log2)


def check_security(poly_modulus_degree: int, modulus_bits: int) -> None:
    """Raise :class:`CryptoError` unless the pair gives 128-bit security."""
    limit = MAX_MODULUS_BITS_128.get(poly_modulus_degree)
    if limit is None:
        raise CryptoError(
            f"ring dimension {poly_modulus_degree} is not one of {sorted(MAX_MODULUS_BITS_128)}"
        )
    if modulus_bits > limit:
        raise CryptoError(
            f"coefficient modulus of {modulus_bits} bits at N={poly_modulus_degree} gives less "
            "than "
            f"128-bit security (at most {limit} bits allowed)"
        )


MASKED_TOTAL_BAND_CENTS: Final = 24 * 2**20
"""Every total threshold and every clamped total lies in ``[−B−1, B]`` cents (24 months of
±2**20 cents, as in strict mode); public, both sides know it."""

MASKED_BFV_N16384: Final = MaskedParams(
    name="bfv-masked-n16384",
    poly_modulus_degree=16384,
    # 300 bits <= 438: 128-bit classical security. One plaintext multiplication.
    # N=8192 was measured and refused: with 218 bits the flood can be at most 2**121 while
    # it must exceed N·(honest noise 2**68)·2**40 = 2**121: no margin at all.
    coeff_mod_bit_sizes=(60, 60, 60, 60, 60),
    # t ~ 2**56: masked values |r·(2d − 1) + e| < 2**27 · (4B + 4) = 2**53.6 < t/2.
    plain_modulus_bits=56,
    mask_log2_range=27,
    # Measured: fresh public-key encryption times a uniform plaintext polynomial: 2**69
    # (invariant noise budget 114 of 184 bits). Bound used: 2**72.
    honest_noise_log2=72,
    # q/t >= 2**180 (bound; the real primes give 2**184). Flood 2**178: decryption keeps about
    # 2**5 of room, and noise up to 2**(179 − 14 − 40) = 2**125, i.e. 53 bits above an honest
    # answer's, stays hidden at statistical distance 2**-40.
    flood_margin_bits=2,
    # Answers travel at 2 primes (120 bits, q/t = 2**64 >> flood·2**-120 + rounding 2**10).
    result_primes=2,
)

MASKED_DEFAULT: Final = MASKED_BFV_N16384

PARAMETER_SETS: Final[dict[str, MaskedParams]] = {MASKED_BFV_N16384.name: MASKED_BFV_N16384}


def parameter_set(name: str) -> MaskedParams:
    """Look up a named parameter set; unknown names raise :class:`CryptoError`."""
    try:
        params = PARAMETER_SETS[name]
    except KeyError:
        raise CryptoError(
            f"unknown parameter set {name!r}; known: {', '.join(sorted(PARAMETER_SETS))}"
        ) from None
    return params


# --- BFV (strict mode) ----------------------------------------------------------------------


MIN_NOISE_MARGIN_BITS: Final = 8
"""Invariant noise budget (bits) that must remain after the strict comparison circuit.

Decryption is exact while the budget is positive; 8 bits means the noise would have to grow
256-fold beyond what the estimate (and the measurement in tests/unit/he) gives before a single
slot could decrypt wrongly. Noise is a sum of thousands of independent terms, so it concentrates:
the measured spread between ciphertexts is about one bit."""


@dataclass(frozen=True, slots=True)
class BfvParams:
    """A BFV parameter set for the exact strict comparison (see :mod:`shared.he.strict`).

    ``coeff_mod_bit_sizes`` lists the primes; the last is the special (key-switching) prime and
    carries no noise budget. ``digit_bits`` is the width of one encrypted digit (SVB uploads its
    one-hot encoding, ``2**digit_bits - 1`` ciphertexts per digit) and ``digits`` the number of
    digits compared; the comparison circuit then has one plaintext multiplication and
    ``ceil(log2(digits))`` ciphertext multiplications on its longest path.

    ``flood_multiplications`` (0 = off) sets the server's noise flooding: the result gets a
    fresh public-key encryption of zero multiplied by that many uniformly random plaintexts,
    whose noise must exceed the circuit's by ``FLOOD_STATISTICAL_BITS`` (see docs/he.md,
    "Circuit privacy").
    """

    name: str
    poly_modulus_degree: int
    plain_modulus: int
    coeff_mod_bit_sizes: tuple[int, ...]
    digit_bits: int
    digits: int
    flood_multiplications: int = 0

    def __post_init__(self) -> None:
        check_security(self.poly_modulus_degree, self.modulus_bits)
        # Batching needs a prime t = 1 (mod 2N); a composite t would silently break SIMD slots.
        t = self.plain_modulus
        if (t - 1) % (2 * self.poly_modulus_degree) or any(
            t % p == 0 for p in range(2, int(t**0.5) + 1)
        ):
            raise CryptoError(
                f"plain modulus {t} is not a prime congruent to 1 mod "
                f"{2 * self.poly_modulus_degree} (needed for batching)"
            )
        if not 1 <= self.digit_bits <= 4 or self.digits < 1:
            raise CryptoError("digit_bits must be 1..4 and digits at least 1")
        if self.flood_multiplications and self.estimated_flooding_bits < FLOOD_STATISTICAL_BITS:
            raise CryptoError(
                f"{self.name}: {self.flood_multiplications} flooding multiplications make the "
                f"flooding noise only about 2**{self.estimated_flooding_bits:.0f} times the "
                f"circuit noise; at least 2**{FLOOD_STATISTICAL_BITS} is required"
            )
        remaining = self.estimated_remaining_budget_bits
        if remaining < MIN_NOISE_MARGIN_BITS:
            raise CryptoError(
                f"{self.name}: a {self.circuit_depth}-level comparison would leave about "
                f"{remaining:.0f} bits of noise budget at N={self.poly_modulus_degree} with "
                f"{self.modulus_bits} modulus bits; at least {MIN_NOISE_MARGIN_BITS} are required"
            )

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree

    @property
    def modulus_bits(self) -> int:
        return sum(self.coeff_mod_bit_sizes)

    @property
    def compared_bits(self) -> int:
        return self.digit_bits * self.digits

    @property
    def ciphertexts_per_chunk(self) -> int:
        """Ciphertexts SVB uploads per chunk of ``slots`` households."""
        return self.digits * ((1 << self.digit_bits) - 1)

    @property
    def circuit_depth(self) -> int:
        """Ciphertext multiplications on the longest path of the comparison tree."""
        return (self.digits - 1).bit_length()

    @property
    def estimated_remaining_budget_bits(self) -> float:
        """Noise budget left in the result (circuit and flooding), by the model below."""
        if self.flood_multiplications:
            return min(self.estimated_circuit_budget_bits, self.estimated_flood_budget_bits)
        return self.estimated_circuit_budget_bits

    @property
    def estimated_flooding_bits(self) -> float:
        """log2 of (flooding noise / circuit noise): how far the flood buries the circuit's."""
        return self.estimated_circuit_budget_bits - self.estimated_flood_budget_bits

    @property
    def estimated_flood_budget_bits(self) -> float:
        """Budget of the flooding ciphertext: a fresh encryption after the random products."""
        return self._fresh_bits - self.flood_multiplications * self._plain_bits

    @property
    def _fresh_bits(self) -> float:
        data_bits = sum(self.coeff_mod_bit_sizes[:-1])
        return data_bits - float(self.plain_modulus.bit_length()) - 7.0

    @property
    def _plain_bits(self) -> float:
        log_n = float(self.poly_modulus_degree.bit_length() - 1)
        return float(self.plain_modulus.bit_length()) + log_n / 2.0 - 2.5

    @property
    def estimated_circuit_budget_bits(self) -> float:
        """Noise budget left after the circuit, by a model calibrated on this machine.

        Measured with SEAL's ``invariant_noise_budget`` (t = 65537): a fresh ciphertext has
        ``data_bits - log2(t) - 7`` bits; a plaintext multiplication by an arbitrary slot vector
        costs ``log2(t) + log2(N)/2 - 2.5`` bits; a ciphertext multiplication with
        relinearisation ``log2(t) + log2(N) - 2``; sums of up to 2**digit_bits terms and the
        tree's additions cost about one bit per level, counted here.
        """
        log_t = float(self.plain_modulus.bit_length())
        log_n = float(self.poly_modulus_degree.bit_length() - 1)
        plain = self._plain_bits + self.digit_bits
        mult = log_t + log_n - 2.0 + 1.0
        return self._fresh_bits - plain - self.circuit_depth * mult


STRICT_BFV_N16384: Final = BfvParams(
    name="bfv-strict-n16384",
    poly_modulus_degree=16384,
    # 290 bits <= 438: 128-bit security. Depth: 1 plaintext + 4 ciphertext multiplications
    # (13 digits of 2 bits = 26 bits, enough for every offset total threshold, see
    # shared.he.strict). Measured remaining noise budget 77 bits (estimate above: 72), so a
    # wrong slot is out of reach by a factor 2**77. 39 ciphertexts of ~1.0 MB per 16,384
    # households: ~2.5 KB uploaded per household; result ~1.0 MB per chunk (~64 B/household);
    # public context (public + relinearisation keys) ~6 MB. Exact: decrypts to 0 or 1.
    # The default: as fast per household as the N=8192 set on this machine, with room for
    # noise flooding: 9 random plaintext products of a fresh encryption of zero (about 90 ms
    # per chunk, ~8%) bury the circuit noise under noise 2**52 times larger (measured; estimate
    # 2**50), leaving a budget of 25 bits (estimate 22).
    plain_modulus=65537,
    coeff_mod_bit_sizes=(60, 60, 60, 60, 50),
    digit_bits=2,
    digits=13,
    flood_multiplications=9,
)

STRICT_BFV_N8192: Final = BfvParams(
    name="bfv-strict-n8192",
    poly_modulus_degree=8192,
    # 218 bits = the 128-bit limit at N=8192 (SEAL's default primes for this degree).
    # Same circuit; measured remaining budget 16 bits (estimate: 11), the thinnest margin we
    # accept (MIN_NOISE_MARGIN_BITS = 8). 39 ciphertexts of 432 KB per 8,192 households:
    # 2.06 KB uploaded per household; public context ~2.7 MB. For smaller uploads and
    # chunks; no room for noise flooding (re-randomised only). The N=16384 set is the default.
    plain_modulus=65537,
    coeff_mod_bit_sizes=(43, 43, 44, 44, 44),
    digit_bits=2,
    digits=13,
)

STRICT_DEFAULT: Final = STRICT_BFV_N16384
"""The strict-mode set clients should use unless an operator chooses otherwise."""

BFV_PARAMETER_SETS: Final[dict[str, BfvParams]] = {
    p.name: p for p in (STRICT_BFV_N16384, STRICT_BFV_N8192)
}


def bfv_parameter_set(name: str) -> BfvParams:
    """Look up a named BFV parameter set; unknown names raise :class:`CryptoError`."""
    try:
        return BFV_PARAMETER_SETS[name]
    except KeyError:
        raise CryptoError(
            f"unknown BFV parameter set {name!r}; known: {', '.join(sorted(BFV_PARAMETER_SETS))}"
        ) from None
