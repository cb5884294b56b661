"""Peer: exact comparison with Zama's concrete-python (TFHE), same privacy as strict mode.

SVB encrypts the offset threshold ``a = X + B + 1`` (26 bits); UWV compares it with its clear
offset total ``s`` (``s < a``) under TFHE; SVB decrypts exactly one bit. One household per
evaluation (no packing). Slow, so it runs on a small count and the benchmark extrapolates.
Needs its own interpreter (numpy < 2, setuptools < 81): see docs/he.md.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import Any

# Run as a script under another interpreter: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.peers.common import TOTAL_BAND_CENTS, PeerResult, synthetic_job


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=20)
    args = parser.parse_args()
    fhe: Any = importlib.import_module("concrete.fhe")
    xs, ss = synthetic_job(args.households, seed=1)
    limit = 2 * TOTAL_BAND_CENTS + 1

    np: Any = importlib.import_module("numpy")
    digits, width = 7, 4  # 28 bits >= 26; concrete compares at most 16 bits at once

    def less(a: Any, s: Any) -> Any:
        # Same balanced tree as shared.he.strict: gt = gt_hi + eq_hi * gt_lo.
        gt = [a[i] > s[i] for i in range(digits)]
        eq = [a[i] == s[i] for i in range(digits)]
        nodes = list(zip(gt, eq, strict=True))
        while len(nodes) > 1:
            merged = []
            for j in range(0, len(nodes) - 1, 2):
                (g_lo, e_lo), (g_hi, e_hi) = nodes[j], nodes[j + 1]
                merged.append((g_hi + e_hi * g_lo, e_hi * e_lo))
            if len(nodes) % 2:
                merged.append(nodes[-1])
            nodes = merged
        return nodes[0][0]

    def split(v: int) -> Any:
        return np.array([(v >> (width * i)) & 15 for i in range(digits)])

    # concrete-python cannot fuse a table lookup over an encrypted and a clear operand, and
    # compares at most 16 bits at once; so UWV's total is encrypted too (under SVB's client
    # key, which a real UWV could not do without a public-key mode): this measures the
    # comparison itself, the most favourable reading for concrete.
    compiler = fhe.Compiler(less, {"a": "encrypted", "s": "encrypted"})
    compile_started = time.perf_counter()
    inputset = [(split(0), split(0)), (split(limit), split(limit)), (split(1), split(limit))]
    inputset += [
        (split(x + TOTAL_BAND_CENTS + 1), split(s + TOTAL_BAND_CENTS + 1))
        for x, s in zip(xs[:20], ss[:20], strict=True)
    ]
    circuit = compiler.compile(inputset)
    circuit.keygen()
    setup = time.perf_counter() - compile_started
    try:
        key_bytes = len(circuit.keys.evaluation.serialize())
    except Exception:  # API differs across versions: size unknown rather than a failed peer
        key_bytes = -1
    upload = 0
    download = 0
    correct = 0
    started = time.perf_counter()
    for x, total in zip(xs, ss, strict=True):
        a = x + TOTAL_BAND_CENTS + 1
        s = min(max(total, -TOTAL_BAND_CENTS - 1), TOTAL_BAND_CENTS) + TOTAL_BAND_CENTS + 1
        enc_a, enc_s = circuit.encrypt(split(a), split(s))
        upload += len(enc_a.serialize())
        result = circuit.run(enc_a, enc_s)  # UWV
        download += len(result.serialize())
        correct += int(bool(circuit.decrypt(result)) == (total < x))  # SVB
    seconds = time.perf_counter() - started
    PeerResult(
        name="concrete-python-tfhe",
        privacy="exact bit (same as strict)",
        households=args.households,
        seconds=seconds,
        correct=correct,
        upload_bytes_per_household=upload / args.households,
        download_bytes_per_household=download / args.households,
        key_bytes=key_bytes,
        note=f"compile+keygen {setup:.1f}s; one household per evaluation; 7 digits of 4 bits; "
        "UWV total encrypted too (concrete cannot mix clear operands into lookups)",
    ).emit()


if __name__ == "__main__":
    main()
