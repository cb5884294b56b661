"""Peer: approximate sign with OpenFHE CKKS (``EvalChebyshevFunction``), packed like ours.

SVB encrypts ``X / W`` (``W = 2B + 2`` the width of the clamped band); UWV subtracts its clamped
``(S + 1/2) / W`` as a plaintext and evaluates a Chebyshev approximation of sign on [−1, 1];
SVB decrypts a value near ±1 and keeps its sign. Privacy is *not* that of strict mode: near
the threshold (|X − S| of a few euros against a 2**26-cent band) the value is far from ±1 and
may have the wrong sign, and Chebyshev ripples carry magnitude (DESIGN §3a). Needs Python 3.10
(the ``openfhe`` wheel ships a cpython-310 extension): see docs/he.md.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as a script under another interpreter: make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.peers.common import TOTAL_BAND_CENTS, PeerResult, synthetic_job


def _size(ofhe: Any, obj: Any) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "obj")
        ofhe.SerializeToFile(path, obj, ofhe.BINARY)
        return os.path.getsize(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=16384)
    parser.add_argument("--degree", type=int, default=119)
    parser.add_argument("--depth", type=int, default=7, help="OpenFHE's table: degree 119 -> 7")
    args = parser.parse_args()
    ofhe: Any = importlib.import_module("openfhe")
    params = ofhe.CCParamsCKKSRNS()
    params.SetMultiplicativeDepth(args.depth)
    params.SetScalingModSize(50)
    params.SetFirstModSize(60)
    params.SetSecurityLevel(ofhe.SecurityLevel.HEStd_128_classic)
    setup_started = time.perf_counter()
    cc = ofhe.GenCryptoContext(params)
    for feature in (ofhe.PKE, ofhe.KEYSWITCH, ofhe.LEVELEDSHE, ofhe.ADVANCEDSHE):
        cc.Enable(feature)
    keys = cc.KeyGen()
    cc.EvalMultKeyGen(keys.secretKey)
    setup = time.perf_counter() - setup_started
    slots = cc.GetRingDimension() // 2
    count = min(args.households, slots)
    xs, ss = synthetic_job(count, seed=1)
    width = float(2 * TOTAL_BAND_CENTS + 2)
    started = time.perf_counter()
    ct = cc.Encrypt(keys.publicKey, cc.MakeCKKSPackedPlaintext([x / width for x in xs]))  # SVB
    clamped = [min(max(s, -TOTAL_BAND_CENTS - 1), TOTAL_BAND_CENTS) for s in ss]  # UWV
    diff = cc.EvalSub(ct, cc.MakeCKKSPackedPlaintext([(s + 0.5) / width for s in clamped]))
    result = cc.EvalChebyshevFunction(
        lambda v: 1.0 if v > 0 else -1.0, diff, -1.0, 1.0, args.degree
    )
    plain = cc.Decrypt(result, keys.secretKey)  # SVB
    plain.SetLength(count)
    values = plain.GetRealPackedValue()
    seconds = time.perf_counter() - started
    correct = sum((v > 0) == (s < x) for v, s, x in zip(values, ss, xs, strict=True))
    far_from_one = sum(abs(abs(v) - 1.0) > 0.1 for v in values)
    PeerResult(
        name=f"openfhe-ckks-chebyshev-d{args.degree}",
        privacy="sign; the value p(d) reveals the distance (no mask)",
        households=count,
        seconds=seconds,
        correct=correct,
        upload_bytes_per_household=_size(ofhe, ct) / count,
        download_bytes_per_household=_size(ofhe, result) / count,
        key_bytes=_size(ofhe, keys.publicKey),
        note=f"N={cc.GetRingDimension()}, setup {setup:.1f}s; {far_from_one} of {count} values "
        "more than 0.1 away from +-1 (they reveal closeness to the threshold)",
    ).emit()


if __name__ == "__main__":
    main()
