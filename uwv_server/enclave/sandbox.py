"""Confinement of the runner process: no network, only its snapshot directory, limits.

:func:`confine` is called by the runner itself after it has read its input and imported
everything it needs, and before it looks at the rule. In order:

1. resource limits (``setrlimit``): CPU seconds, address space, no file writes (``FSIZE``
   0), few open files; the wall-clock limit is the parent's (it kills the process);
2. a new network namespace (``unshare(CLONE_NEWNET)``): no interface but a loopback that is
   down, so no connection can be made to anything;
3. ``chroot`` into the snapshot directory: ``/`` is the snapshot, nothing else exists;
4. (:func:`drop_privileges`, once the runner has read its data) drop to user ``nobody``, so
   the chroot cannot be undone and nothing more can be opened: the rule is only parsed after.

Steps 2–4 need root (``CAP_SYS_ADMIN``/``CAP_SYS_CHROOT``). Where they are not available the
runner still runs, and the statement records ``network: none`` / ``filesystem: none``:
isolation is detected and recorded, never assumed. A server may refuse to run unconfined
(``require_isolation``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Final

CLONE_NEWNET: Final = 0x40000000
NOBODY: Final = 65534


@dataclass(frozen=True)
class Limits:
    """The runner's resource limits."""

    cpu_seconds: int = 120
    memory_bytes: int = 8 * 1024**3
    wall_seconds: float = 300.0
    open_files: int = 64


@dataclass(frozen=True)
class Confinement:
    network: str  # "namespace" | "none"
    filesystem: str  # "chroot" | "none"
    uid: int
    data_root: Path
    """Where the snapshot is now (``/`` inside the chroot)."""


def _unshare_net() -> bool:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return int(libc.unshare(CLONE_NEWNET)) == 0


def confine(root: Path, limits: Limits) -> Confinement:
    """Confine the calling process (see the module docstring); returns what took effect."""
    # SIGXCPU at the soft limit names the cause; the hard limit (SIGKILL) is the backstop.
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 2))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    network = "namespace" if _unshare_net() else "none"
    filesystem, data_root = "none", root
    try:
        os.chroot(root)
        os.chdir("/")
        filesystem, data_root = "chroot", Path("/")
    except OSError:
        os.chdir(root)
    return Confinement(network, filesystem, NOBODY if os.getuid() == 0 else os.getuid(), data_root)


def drop_privileges(limits: Limits) -> None:
    """Become ``nobody`` (if root) and cap open files: after this, no new file can be read."""
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
