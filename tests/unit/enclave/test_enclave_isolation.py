"""The isolated runner: hostile code run under the runner's confinement cannot reach the
network, files outside its snapshot or the server's secrets; limits end runs cleanly."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest

from tests.unit.enclave.enclave_testkit import running_as_root
from uwv_server.enclave.errors import RunFailed
from uwv_server.enclave.runner import launch
from uwv_server.enclave.sandbox import Limits

# Hostile "runner": reads its job like the real one, confines itself the same way, then tries
# to break out and reports what happened as its "statement".
HOSTILE = r"""
import json, os, socket, sys
from pathlib import Path
from uwv_server.enclave import job
from uwv_server.enclave.sandbox import Limits, confine, drop_privileges
header, _ = job.decode(sys.stdin.buffer.read())
limits = Limits(**header["limits"])
confined = confine(Path(header["snapshot_dir"]), limits)
drop_privileges(limits)
report = {"network": confined.network, "filesystem": confined.filesystem, "uid": os.getuid()}
def attempt(name, fn):
    try:
        report[name] = "succeeded: " + repr(fn())[:80]
    except BaseException as exc:
        report[name] = "failed: " + type(exc).__name__
attempt("read_passwd", lambda: open("/etc/passwd").read())
attempt("read_key", lambda: open(header["secret_path"]).read())
attempt("write_file", lambda: open("/dropped.txt", "w").write("x"))
attempt("connect_out", lambda: socket.create_connection(("1.1.1.1", 53), timeout=2))
attempt("connect_host", lambda: socket.create_connection(("127.0.0.1", header["port"]), timeout=2))
report["root_listing"] = sorted(os.listdir("/"))
report["env"] = sorted(os.environ)
sys.stdout.buffer.write(job.encode({"ok": True, "statement": json.dumps(report)},
                                   {"outcomes": __import__("numpy").zeros(1, "u1")}))
"""


def _hostile(tmp_path: Path, code: str, limits: Limits, **extra: object) -> dict[str, object]:
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    (snapshot / "monthly.parquet").write_bytes(b"PAR1")
    header = {"snapshot_dir": str(snapshot), **extra}
    out = launch(header, {}, limits, cwd=snapshot, unsafe_entry=["-c", code])
    return dict(json.loads(out.statement))


@pytest.mark.skipif(not running_as_root(), reason="namespaces and chroot need root")
def test_hostile_runner_cannot_reach_network_files_or_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "uwv-approver.key"
    secret.write_text("server key material")
    monkeypatch.setenv("SVB_KEY_PASSPHRASE", "do not leak")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        report = _hostile(
            tmp_path,
            HOSTILE,
            Limits(wall_seconds=60),
            secret_path=str(secret),
            port=listener.getsockname()[1],
        )
    finally:
        listener.close()
    assert report["network"] == "namespace" and report["filesystem"] == "chroot"
    assert report["uid"] == 65534
    for attempt in ("read_passwd", "read_key", "write_file", "connect_out", "connect_host"):
        assert str(report[attempt]).startswith("failed"), (attempt, report[attempt])
    assert report["root_listing"] == ["monthly.parquet"]
    assert "SVB_KEY_PASSPHRASE" not in str(report["env"])


def test_cpu_limit_ends_the_run_cleanly(tmp_path: Path) -> None:
    code = HOSTILE.split("report =")[0] + "\nwhile True:\n    pass\n"
    with pytest.raises(RunFailed, match="CPU-time limit"):
        _hostile(tmp_path, code, Limits(cpu_seconds=1, wall_seconds=30))


def test_memory_limit_ends_the_run_cleanly(tmp_path: Path) -> None:
    code = HOSTILE.split("report =")[0] + "\nhog = bytearray(3 * 1024**3)\n"
    with pytest.raises(RunFailed, match=r"exited with status 1.*MemoryError"):
        _hostile(tmp_path, code, Limits(memory_bytes=1024**3, wall_seconds=30))


def test_wall_clock_limit_ends_the_run_cleanly(tmp_path: Path) -> None:
    code = "import time; time.sleep(60)"
    with pytest.raises(RunFailed, match="wall-clock limit"):
        _hostile(tmp_path, code, Limits(wall_seconds=1.5))


def test_a_crashing_runner_fails_the_run(tmp_path: Path) -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    with pytest.raises(RunFailed, match="SIGSEGV"):
        _hostile(tmp_path, code, Limits(wall_seconds=30))


def test_garbage_output_fails_the_run(tmp_path: Path) -> None:
    with pytest.raises(RunFailed, match="without a result"):
        _hostile(tmp_path, "print('decisions: all eligible')", Limits(wall_seconds=30))


def test_job_frames_round_trip_and_refuse_garbage() -> None:
    from uwv_server.enclave import job

    frame = job.encode({"a": 1}, {"x": np.arange(5, dtype=np.int64), "y": np.ones(3, np.uint8)})
    header, arrays = job.decode(frame)
    assert header == {"a": 1}
    assert arrays["x"].tolist() == [0, 1, 2, 3, 4] and arrays["y"].tolist() == [1, 1, 1]
    for bad in (b"", b"XXXX" + frame[4:], frame[:-1], frame + b"\x00"):
        with pytest.raises(job.FrameError):
            job.decode(bad)
