"""Constant memory: sealing and opening a large file holds about one chunk, not the file.

Measured with tracemalloc (bytes allocated by Python, peak), never with wall time. The file is
48 MiB in 1 MiB chunks; the bound is a few chunks whatever the size.
"""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

from sealed_testkit import SVB_OIN, UWV_OIN, Ca, clock, trusted

from shared.sealed import MessageKind, SealedReader, SealedWriter

MIB = 1 << 20
TOTAL = 48 * MIB
BOUND = 6 * MIB


def _piece(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest() * (MIB // 32 // 4)  # 256 KiB


def test_seal_and_open_48_mib_in_constant_memory(ca: Ca, tmp_path: Path) -> None:
    sender = ca.sender("SVB", SVB_OIN)
    receiver, recipient = ca.receiver("UWV", UWV_OIN)
    path = tmp_path / "big.sealed"
    pieces = TOTAL // len(_piece(0))

    tracemalloc.start()
    try:
        with (
            path.open("wb") as out,
            SealedWriter(
                out,
                sender=sender,
                recipient=recipient,
                kind=MessageKind.REQUEST,
                message_id="batch-big",
                content_type="application/octet-stream",
                clock=clock,
            ) as w,
        ):
            for i in range(pieces):
                w.write(_piece(i))
        _, seal_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()

        expected = hashlib.sha256()
        for i in range(pieces):
            expected.update(_piece(i))
        got = hashlib.sha256()
        with path.open("rb") as src:
            reader = SealedReader.open(
                src, receiver=receiver, senders=trusted(ca), kinds={MessageKind.REQUEST}
            )
            for chunk in reader.chunks():
                got.update(chunk)
        _, open_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert got.digest() == expected.digest()
    assert reader.summary is not None and reader.summary.chunks == TOTAL // MIB
    assert path.stat().st_size > TOTAL
    assert seal_peak < BOUND, f"sealing peaked at {seal_peak / MIB:.1f} MiB"
    assert open_peak < BOUND, f"opening peaked at {open_peak / MIB:.1f} MiB"
