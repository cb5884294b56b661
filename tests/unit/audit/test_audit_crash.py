"""Crash during append: a writer killed with SIGKILL mid-append loses nothing it acknowledged.

The writer (a subprocess) appends batches of deterministic entries and prints
the log size after each durable append (the acknowledgement). The test kills
it at a random moment, reopens the log with the full check, and requires: the
log opens, every acknowledged entry is there and is exactly what was written,
and the root matches a recomputation. Repeated over several kills.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from audit_testkit import ORIGIN, make_entry

from shared.audit import AuditLog, leaf_hash, root_of

HERE = Path(__file__).resolve().parent

WRITER = f"""
import sys
sys.path.insert(0, {str(HERE)!r})
from audit_testkit import make_entry
from shared.audit import AuditLog
log = AuditLog.open(sys.argv[1], {ORIGIN!r})
batch = int(sys.argv[2])
while True:
    n = log.size
    log.append([make_entry(i) for i in range(n, n + batch)])
    print(log.size, flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_sigkill_mid_append_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite"
    rng = random.Random(6962)
    acknowledged = 0
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(rng.choice([1, 50, 200]))],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        # Wait for a few acknowledgements, then kill at a random moment.
        for _ in range(rng.randint(1, 4)):
            line = proc.stdout.readline()
            assert line, "writer died before acknowledging"
            acknowledged = max(acknowledged, int(line))
        time.sleep(rng.uniform(0, 0.02))
        os.kill(proc.pid, signal.SIGKILL)
        for line in proc.stdout:  # acknowledgements printed before the kill landed
            if line.strip():
                acknowledged = max(acknowledged, int(line))
        proc.wait()
        assert proc.returncode == -signal.SIGKILL

        with AuditLog.open(db, ORIGIN, check="full") as log:
            assert log.size >= acknowledged
            leaves = log.leaves(0, log.size)
            assert leaves == [make_entry(i).canonical_bytes() for i in range(log.size)]
            assert log.root() == root_of([leaf_hash(x) for x in leaves])
