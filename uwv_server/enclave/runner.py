"""Starting the isolated runner: one fresh process per run, killed at the wall-clock limit.

The process is ``python -I -m uwv_server.enclave.runner_main`` (isolated mode: no user site,
no ``PYTHON*`` variables, no current directory on the path) with a minimal environment, its
working directory in the snapshot, no inherited file descriptors, and only its job on stdin.
It confines itself (:mod:`uwv_server.enclave.sandbox`) before it looks at the rule. A crash,
a limit or a rule error ends that run with :class:`RunFailed`; the server is not affected.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from uwv_server.enclave import job
from uwv_server.enclave.errors import RunFailed
from uwv_server.enclave.sandbox import Limits

RUNNER_MODULE: Final = "uwv_server.enclave.runner_main"
MINIMAL_ENV: Final = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    # One thread per numeric library: the limits are per process, and 2 cores are shared.
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
MAX_STDERR: Final = 2000


@dataclass(frozen=True)
class RunnerOutput:
    """What a successful runner returned."""

    outcomes: npt.NDArray[np.uint8]
    statement: bytes


def launch(
    header: dict[str, Any],
    arrays: dict[str, npt.NDArray[Any]],
    limits: Limits,
    *,
    cwd: Path,
    unsafe_entry: Sequence[str] | None = None,
) -> RunnerOutput:
    """Run one job in a fresh runner process and return its result.

    ``unsafe_entry`` replaces ``-m uwv_server.enclave.runner_main`` with other arguments to
    the interpreter: only for tests that run hostile code under the same confinement.
    """
    frame = job.encode(
        {
            **header,
            "limits": {
                "cpu_seconds": limits.cpu_seconds,
                "memory_bytes": limits.memory_bytes,
                "wall_seconds": limits.wall_seconds,
                "open_files": limits.open_files,
            },
        },
        arrays,
    )
    entry = list(unsafe_entry) if unsafe_entry is not None else ["-m", RUNNER_MODULE]
    try:
        done = subprocess.run(
            [sys.executable, "-I", *entry],
            input=frame,
            capture_output=True,
            timeout=limits.wall_seconds,
            env=dict(MINIMAL_ENV),
            cwd=cwd,
            close_fds=True,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RunFailed(
            f"the runner exceeded its wall-clock limit of {limits.wall_seconds:g} s and was "
            "stopped; nothing was returned"
        ) from None
    except OSError as exc:
        raise RunFailed(f"the runner could not be started: {exc}") from None
    try:
        result, out = job.decode(done.stdout)
    except job.FrameError:
        raise RunFailed(_crash_text(done.returncode, done.stderr)) from None
    if not result.get("ok"):
        raise RunFailed(f"the run failed ({result.get('kind', 'error')}): {result.get('error')}")
    if done.returncode != 0 or "outcomes" not in out:
        raise RunFailed(_crash_text(done.returncode, done.stderr))
    return RunnerOutput(
        outcomes=np.array(out["outcomes"], dtype=np.uint8),
        statement=str(result["statement"]).encode("utf-8"),
    )


def _crash_text(code: int, stderr: bytes) -> str:
    if code < 0:
        import signal

        name = signal.Signals(-code).name
        why = {
            "SIGXCPU": "it exceeded its CPU-time limit",
            "SIGKILL": "it was killed (CPU-time or memory limit)",
            "SIGSEGV": "it crashed",
        }.get(name, "it was stopped")
        return f"the runner ended with {name}: {why}; nothing was returned"
    tail = stderr.decode("utf-8", "replace")[-MAX_STDERR:].strip()
    return f"the runner exited with status {code} without a result" + (
        f": {tail.splitlines()[-1]}" if tail else ""
    )
