"""Peer: masked comparison with Paillier (python-paillier, ``phe``), 3072-bit modulus.

Same privacy as this project's masked mode: SVB decrypts ``r·(2(X − S) − 1)`` with a
log-uniform ``r`` in [1, 2**24] and keeps the sign; the value leaks the distance up to ``r``.
One ciphertext per household (no packing). Run: ``python paillier_phe.py --households 100``.
"""

from __future__ import annotations

import argparse
import importlib
import secrets
import sys
import time
from pathlib import Path
from typing import Any

# Run as a script under another interpreter: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.peers.common import PeerResult, synthetic_job


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=100)
    parser.add_argument("--bits", type=int, default=3072, help="3072 bits: 128-bit security")
    args = parser.parse_args()
    phe: Any = importlib.import_module("phe")
    xs, ss = synthetic_job(args.households, seed=1)
    keygen_started = time.perf_counter()
    public, private = phe.generate_paillier_keypair(n_length=args.bits)
    keygen = time.perf_counter() - keygen_started
    started = time.perf_counter()
    uploads = [public.encrypt(x) for x in xs]  # SVB
    results = []
    for enc_x, s in zip(uploads, ss, strict=True):  # UWV
        r = 2 ** (secrets.randbelow(24 << 20) / float(1 << 20))
        factor = max(1, round(r))
        v = (enc_x - s) * (2 * factor) - factor
        v.obfuscate()  # re-randomise, as our strict mode does
        results.append(v)
    decided = [private.decrypt(v) > 0 for v in results]  # SVB
    seconds = time.perf_counter() - started
    correct = sum(d == (s < x) for d, s, x in zip(decided, ss, xs, strict=True))
    ct_bytes = (2 * args.bits + 7) // 8  # a Paillier ciphertext lives mod n**2
    PeerResult(
        name=f"paillier-phe-{args.bits}",
        privacy="masked (leaks distance up to a factor 2**24)",
        households=args.households,
        seconds=seconds,
        correct=correct,
        upload_bytes_per_household=ct_bytes,
        download_bytes_per_household=ct_bytes,
        key_bytes=(args.bits + 7) // 8,
        note=f"keygen {keygen:.1f}s; no SIMD packing: one ciphertext per household",
    ).emit()


if __name__ == "__main__":
    main()
