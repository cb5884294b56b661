"""What a dishonest SVB gets from masked mode: each hand-crafted encoding, what the server
does with it, and how many of UWV's totals the attacker then reads exactly.

Each attack is run twice: against the server's evaluation (:meth:`evaluate`: re-randomised,
flooded, switched down; public keys must carry the common ``a``; malformed uploads refused)
and against the old, unprotected evaluation (``ct·P + Q`` only), so a 0% row is a closed
channel, not a broken attack. ``python -m shared.he.leakage`` prints this after the honest
report; ``python -m shared.he.leakage_dishonest`` prints it alone.

Strict mode's keys (:func:`strict_key_rows`): a malformed relinearisation key proposed among
K key sets to UWV's real key check (:mod:`uwv_server.key_checks`), for every challenge UWV can
draw; what an answer under it gives when the challenge misses it; and the degenerate keys the
parse refuses.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shared.errors import CryptoError
from shared.he import masked, strict
from shared.he.backend import PublicBfvContext, PublicMaskedContext, SecretMaskedContext
from shared.he.backend import _dishonest as attack
from shared.he.keysets import (
    DEFAULT_KEY_SETS,
    StrictKeyFamily,
    catch_probability,
    regenerate_public_bytes,
)
from shared.he.params import MASKED_DEFAULT, STRICT_BFV_N8192, BfvParams, MaskedParams

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class AttackRow:
    name: str
    encoding: str
    protected: str
    unprotected: str

    def format(self) -> str:
        return (
            f"{self.name:<22} {self.encoding:<52} server: {self.protected:<34} "
            f"unprotected: {self.unprotected}"
        )


def recovered(
    values: IntArray, masks: IntArray, thresholds: IntArray, totals: IntArray, mask_bits: int
) -> float:
    """Fraction of clamped totals ``S'`` the attacker gets exactly from ``v`` and its reading
    of ``r``. A reading outside ``[1, 2**L)`` is replaced by the best blind guess, ``r = 1``
    (the most likely mask, probability ``1/L``): so ~``1/L`` is what an honest answer gives."""
    r = np.where((masks < 1) | (masks >= 1 << mask_bits), 1, masks).astype(np.float64)
    estimate = np.round(thresholds - (values / r + 1.0) / 2.0).astype(np.int64)
    return float((estimate == masked.clamp_totals(totals)).mean())


def _noise_masks(svb: SecretMaskedContext, log2_delta: int, answer: bytes) -> IntArray:
    return attack.unsafe_masks_from_noise(svb, answer, log2_delta)


def _refusal(build: Callable[[], object]) -> str:
    try:
        build()
    except CryptoError as exc:
        return f"refused ({str(exc)[:60]})"
    return "ACCEPTED"


def run(count: int = 256, params: MaskedParams = MASKED_DEFAULT, seed: int = 14) -> list[AttackRow]:
    """Every attack on one chunk of ``count`` households with random totals."""
    rng = np.random.default_rng(seed)
    totals = rng.integers(0, 3_600_000, count)
    x = np.full(count, 1_800_000, dtype=np.int64)
    svb = SecretMaskedContext.generate(params)
    uwv = PublicMaskedContext(svb.public_bytes(), params.name)
    ops = masked.mask_operands(totals, params)

    def both(data: bytes, read: Callable[[bytes], IntArray]) -> tuple[str, str]:
        out = []
        for answer in (
            uwv.evaluate(uwv.parse(data), ops.multiply, ops.add),
            uwv.unsafe_evaluate_unprotected(uwv.parse(data), ops.multiply, ops.add),
        ):
            values = svb.decrypt(answer)[:count]
            share = recovered(values, read(answer)[:count], x, totals, params.mask_log2_range)
            out.append(f"{100 * share:.1f}% of totals exact")
        return out[0], out[1]

    rows: list[AttackRow] = []
    honest = svb.encrypt(x)
    p, u = both(honest, lambda _: np.ones(count, dtype=np.int64))
    rows.append(AttackRow("honest", "Enc(X); blind guess r = 1", p, u))
    c = 1 << 35
    p, u = both(
        attack.unsafe_constant_c1(svb, x, c), lambda a: attack.unsafe_masks_from_c1(svb, a, c)
    )
    rows.append(AttackRow("constant c1", "c1 = 2**35, c0 fixed so it still decrypts to X", p, u))
    for k in (63, 100, 120):
        data = attack.unsafe_inflated_noise(svb, x, k)
        p, u = both(data, functools.partial(_noise_masks, svb, k))
        rows.append(AttackRow(f"inflated noise 2**{k}", f"c0 += 2**{k}; read noise / 2**{k}", p, u))
    refusals = [
        (
            "complex threshold",
            "a CKKS context for t + b·i",
            lambda: PublicMaskedContext(b"\x5e\xa1" + b"\0" * 64, "ckks-masked-n8192"),
        ),
        (
            "pk with a = 0",
            "public key (p0, 0)",
            lambda: PublicMaskedContext(attack.unsafe_public_key(svb, "a-zero"), params.name),
        ),
        (
            "pk with a constant",
            "public key (p0, 7)",
            lambda: PublicMaskedContext(attack.unsafe_public_key(svb, "a-constant"), params.name),
        ),
        (
            "pk = (0, 0)",
            "public key (0, 0)",
            lambda: PublicMaskedContext(attack.unsafe_public_key(svb, "zero"), params.name),
        ),
        (
            "chosen scale",
            "ciphertext with scale 2**40",
            lambda: uwv.parse(attack.unsafe_reshaped(svb, "scale")),
        ),
        (
            "lower level",
            "ciphertext switched to fewer primes",
            lambda: uwv.parse(attack.unsafe_reshaped(svb, "level")),
        ),
        (
            "3 polynomials",
            "ciphertext of size 3",
            lambda: uwv.parse(attack.unsafe_reshaped(svb, "size")),
        ),
        ("coefficient >= q", "c1[0] = q_0", lambda: uwv.parse(attack.unsafe_reshaped(svb, "big"))),
    ]
    for name, encoding, build in refusals:
        rows.append(AttackRow(name, encoding, _refusal(build), "-"))
    return rows


def strict_key_rows(
    count: int = 64, params: BfvParams = STRICT_BFV_N8192, key_sets: int = 3
) -> list[AttackRow]:
    """Strict mode's relinearisation keys against the key check (K = ``key_sets``)."""
    family = StrictKeyFamily(params, bytes(range(32)))
    honest = family.public_contexts(key_sets)
    bad_at = 1
    uploads = list(honest)
    uploads[bad_at] = attack.unsafe_relin_keys(honest[bad_at], "malformed")
    # UWV's check (uwv_server.key_checks) for every challenge it can draw: the opened sets'
    # seeds must regenerate exactly the uploaded bytes.
    regenerated = [
        regenerate_public_bytes(params, family.seed(k), family.crs_seed) for k in range(key_sets)
    ]
    caught = sum(
        any(regenerated[k] != uploads[k] for k in range(key_sets) if k != chosen)
        for chosen in range(key_sets)
    )
    rows = [
        AttackRow(
            "malformed relin key",
            f"b_i += F_i·Z (Z = 1) in 1 of K = {key_sets} sets",
            f"caught for {caught} of {key_sets} challenges",
            f"(K-1)/K; K = {DEFAULT_KEY_SETS}: {catch_probability(DEFAULT_KEY_SETS):.1%}",
        )
    ]
    # the 1/K case: the answer under the malformed key
    secret = family.key_set(bad_at)
    uwv = PublicBfvContext(uploads[bad_at], params.name)
    rng = np.random.default_rng(14)
    x = np.full(count, 1_800_000, dtype=np.int64)
    totals = rng.integers(0, 3_600_000, count)
    values = secret.decrypt(
        strict.evaluate_chunk(uwv, strict.encrypt_thresholds(secret, x, 12), totals)
    )
    valid = np.isin(values[:count], [0, 1]).mean()
    rows.append(
        AttackRow(
            "  ... if not opened",
            "strict batch under the accepted malformed key",
            f"{100 * valid:.1f}% slots 0/1 (integrity errors)",
            "tree alone: bit + t·c2·Z/q, set by UWV's digits",
        )
    )
    for change in ("zero", "constant", "not-common"):
        data = attack.unsafe_relin_keys(honest[0], change)
        rows.append(
            AttackRow(
                f"relin key {change}",
                "in the chosen set (opened sets fail regeneration)",
                _refusal(functools.partial(PublicBfvContext, data, params.name)),
                "-",
            )
        )
    return rows


def report_text(count: int = 256, *, strict_keys: bool = False) -> str:
    lines = [f"dishonest SVB, masked mode, one chunk of {count} households:"]
    lines += [row.format() for row in run(count)]
    if strict_keys:
        lines.append("dishonest SVB, strict mode's relinearisation keys (the key check):")
        lines += [row.format() for row in strict_key_rows()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.he.leakage_dishonest",
        description="What a dishonest SVB's hand-crafted encodings get from masked mode.",
    )
    parser.add_argument("--households", type=int, default=256)
    args = parser.parse_args(argv)
    print(report_text(args.households, strict_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
