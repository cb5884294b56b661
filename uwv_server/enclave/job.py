"""The runner's input and output on its pipes: one JSON header and raw arrays.

Frame: ``b"AIOJ"``, an 8-byte little-endian header length, the UTF-8 JSON header, then the
arrays named in the header (``"arrays": [[name, dtype, length], …]``) back to back. The
runner reads everything from stdin before it confines itself and writes its result frame to
stdout; nothing else crosses the process boundary.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

MAGIC: Final = b"AIOJ"
MAX_HEADER_BYTES: Final = 4_000_000
_DTYPES: Final[dict[str, np.dtype[Any]]] = {"<i8": np.dtype("<i8"), "u1": np.dtype("u1")}


class FrameError(ValueError):
    """A frame that does not have the documented form (a bug or a hostile peer)."""


def encode(header: Mapping[str, Any], arrays: Mapping[str, npt.NDArray[Any]]) -> bytes:
    """One frame: header plus arrays (int64 or uint8 only)."""
    specs = []
    blobs = []
    for name, arr in arrays.items():
        dtype = "u1" if arr.dtype in (np.uint8, np.bool_) else "<i8"
        data = np.ascontiguousarray(arr, dtype=_DTYPES[dtype])
        specs.append([name, dtype, len(data)])
        blobs.append(data.tobytes())
    head = json.dumps({**header, "arrays": specs}).encode("utf-8")
    return b"".join([MAGIC, struct.pack("<Q", len(head)), head, *blobs])


def decode(frame: bytes) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """Header and arrays of a frame; :class:`FrameError` if it is malformed."""
    if frame[:4] != MAGIC or len(frame) < 12:
        raise FrameError("not a runner frame")
    (size,) = struct.unpack("<Q", frame[4:12])
    if size > MAX_HEADER_BYTES or 12 + size > len(frame):
        raise FrameError("runner frame header has a bad length")
    try:
        header = json.loads(frame[12 : 12 + size])
        specs = header.pop("arrays")
    except (ValueError, KeyError) as exc:
        raise FrameError(f"runner frame header is not valid: {exc}") from None
    arrays: dict[str, npt.NDArray[Any]] = {}
    offset = 12 + size
    for name, dtype, length in specs:
        dt = _DTYPES.get(dtype)
        if dt is None or not isinstance(length, int) or length < 0:
            raise FrameError(f"runner frame array {name!r} has a bad spec")
        end = offset + dt.itemsize * length
        if end > len(frame):
            raise FrameError(f"runner frame array {name!r} is truncated")
        arrays[str(name)] = np.frombuffer(frame, dtype=dt, count=length, offset=offset)
        offset = end
    if offset != len(frame):
        raise FrameError("runner frame has trailing bytes")
    return header, arrays
