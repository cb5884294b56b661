"""Waiting for a benchmark's child process and reading its peak memory."""

from __future__ import annotations

import os
import subprocess
from typing import Any


def wait_rss_kb(proc: subprocess.Popen[Any]) -> int:
    """Wait for ``proc``, set its ``returncode`` and return its peak resident set size in KiB
    (``wait4``: the child's own, plus what it inherited at fork, so fork from a small parent)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return int(usage.ru_maxrss)
