"""Length-prefixed records inside a sealed payload: how messages travel in one file.

A payload is a sequence of records ``uint32_be(len) ‖ bytes``, independent of the chunk
boundaries (a record may span chunks, a chunk may hold many records). The reader yields each
record as soon as its last byte is authenticated, holding at most one record and one chunk.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import Final

from shared.sealed.errors import MalformedFile
from shared.sealed.writer import SealedWriter

MAX_RECORD_BYTES: Final = 64 << 20
"""One record is one protocol message (a ciphertext chunk, a context): gRPC's own bound."""


def write_record(writer: SealedWriter, record: bytes) -> None:
    """Append one record to the payload of ``writer``."""
    if len(record) > MAX_RECORD_BYTES:
        raise ValueError(f"a record has at most {MAX_RECORD_BYTES} bytes, got {len(record)}")
    writer.write(struct.pack(">I", len(record)))
    writer.write(record)


def iter_records(
    chunks: Iterable[bytes], *, limit: int = MAX_RECORD_BYTES, name: str = "sealed file"
) -> Iterator[bytes]:
    """The records of a payload given as its chunks; :class:`MalformedFile` if a record is
    larger than ``limit`` or the payload ends inside one."""
    buffer = bytearray()
    need: int | None = None
    position = 0  # payload offset of buffer[0], for messages
    count = 0
    for chunk in chunks:
        buffer += chunk
        while True:
            if need is None:
                if len(buffer) < 4:
                    break
                (need,) = struct.unpack(">I", buffer[:4])
                if need > limit:
                    raise MalformedFile(
                        f"{name}: record {count} at payload byte {position} claims {need} "
                        f"bytes, more than {limit}"
                    )
                del buffer[:4]
                position += 4
            if len(buffer) < need:
                break
            record = bytes(buffer[:need])
            del buffer[:need]
            position += need
            need = None
            count += 1
            yield record
    if need is not None or buffer:
        raise MalformedFile(
            f"{name}: the payload ends inside record {count} (at payload byte {position})"
        )
