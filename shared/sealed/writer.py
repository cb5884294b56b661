"""Writing a sealed file, chunk by chunk, in constant memory.

::

    with SealedWriter(out, sender=..., recipient=..., kind=MessageKind.REQUEST,
                      message_id="batch-…", content_type="application/x-protobuf",
                      clock=clock) as w:
        for piece in pieces:
            w.write(piece)
    summary = w.summary          # file digest and size, for the sidecar and the journal

Nothing but the header is written before the first :meth:`SealedWriter.write`; each full
chunk goes out as soon as the writer knows another byte follows it (so the last chunk can be
flagged as last). Leaving the ``with`` block by an exception writes no trailer: the partial
file is refused as truncated by any reader.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from shared.sealed import _hpke, layout
from shared.sealed._stream import TAG_BYTES, ChunkCipher
from shared.sealed.header import (
    DEFAULT_CHUNK_SIZE,
    Header,
    InReplyTo,
    MessageKind,
    Receiver,
    Sender,
    rfc3339,
)
from shared.sealed.identity import Recipient, SenderKey


@dataclass(frozen=True)
class SealedSummary:
    """What a finished sealed file is: its header, size, digest and plaintext length."""

    header: Header
    size: int
    sha256: str
    """SHA-256 of the whole file (the sidecar's checksum; a response's ``in_reply_to``)."""
    header_sha256: str
    """SHA-256 of the file up to and including the header signature (unique per file)."""
    plaintext_bytes: int
    chunks: int


class SealedWriter:
    """Seals what is written to it into ``out`` (a binary stream opened for writing)."""

    def __init__(
        self,
        out: BinaryIO,
        *,
        sender: SenderKey,
        recipient: Recipient,
        kind: MessageKind,
        message_id: str,
        content_type: str,
        clock: Callable[[], datetime],
        in_reply_to: InReplyTo | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        random_bytes: Callable[[int], bytes] = os.urandom,
        reply_certificate: x509.Certificate | None = None,
    ) -> None:
        """``reply_certificate``: the sender's own encryption certificate, carried in the
        header so the receiver can seal its reply to it (requests)."""
        self.header = Header(
            kind=kind,
            message_id=message_id,
            in_reply_to=in_reply_to,
            sender=Sender(
                oin=sender.oin,
                certificates=tuple(
                    base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii")
                    for c in sender.chain
                ),
                reply_certificate=None
                if reply_certificate is None
                else base64.b64encode(reply_certificate.public_bytes(Encoding.DER)).decode(),
            ),
            receiver=Receiver(oin=recipient.oin, key_id=recipient.key_id),
            suite=_hpke.suite_for(recipient.public_key),
            content_type=content_type,
            created=rfc3339(clock()),
            chunk_size=chunk_size,
        )
        self._out = out
        self._sender = sender
        self._hash = hashlib.sha256()
        self._size = 0
        self._buffer = bytearray()
        self._index = 0
        self._plaintext = 0
        self._closed = False
        self.summary: SealedSummary | None = None

        encoded = self.header.encode()
        prefix = layout.MAGIC + bytes([layout.VERSION]) + struct.pack(">I", len(encoded)) + encoded
        prefix_digest = hashlib.sha256(prefix).digest()
        file_key = random_bytes(_hpke.FILE_KEY_BYTES)
        key_block = _hpke.seal_file_key(
            file_key,
            recipient.public_key,
            self.header.suite,
            info=layout.KEY_INFO_CONTEXT + prefix_digest,
        )
        self._emit(prefix + key_block)
        signed = hashlib.sha256(prefix + key_block).digest()
        self._emit(_signature(sender.sign(layout.HEADER_SIGNATURE_CONTEXT + signed)))
        self._header_sha256 = self._hash.hexdigest()
        self._cipher = ChunkCipher(file_key, prefix_digest)
        del file_key

    def __enter__(self) -> SealedWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True  # no trailer: a reader refuses the partial file as truncated

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self._hash.update(data)
        self._size += len(data)

    def _frame(self, plaintext: bytes | memoryview, last: bool) -> None:
        ciphertext = self._cipher.seal(self._index, last, bytes(plaintext))
        flag = layout.FLAG_LAST if last else layout.FLAG_MORE
        self._emit(struct.pack(">BI", flag, len(ciphertext)) + ciphertext)
        self._index += 1
        self._plaintext += len(plaintext)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Add ``data`` to the payload; full chunks are sealed and written as they fill."""
        if self._closed:
            raise ValueError("write to a closed sealed writer")
        size = self.header.chunk_size
        self._buffer += data
        if len(self._buffer) <= size:
            return
        view = memoryview(self._buffer)
        start = 0
        # keep at least one byte back: only close() knows which chunk is the last
        while len(self._buffer) - start > size:
            self._frame(view[start : start + size], last=False)
            start += size
        view.release()
        del self._buffer[:start]

    def close(self) -> SealedSummary:
        """Seal the last chunk and sign the transcript; idempotent."""
        if self.summary is not None:
            return self.summary
        if self._closed:
            raise ValueError("the sealed writer was abandoned after an error")
        self._frame(bytes(self._buffer), last=True)
        self._buffer.clear()
        transcript = self._hash.digest()
        self._emit(_signature(self._sender.sign(layout.TRANSCRIPT_SIGNATURE_CONTEXT + transcript)))
        self._out.flush()
        self._closed = True
        self.summary = SealedSummary(
            header=self.header,
            size=self._size,
            sha256=self._hash.hexdigest(),
            header_sha256=self._header_sha256,
            plaintext_bytes=self._plaintext,
            chunks=self._index,
        )
        return self.summary


def _signature(sig: bytes) -> bytes:
    if len(sig) > layout.MAX_SIGNATURE_BYTES:
        raise ValueError("signature longer than the format allows")
    return struct.pack(">H", len(sig)) + sig


CHUNK_OVERHEAD = 1 + 4 + TAG_BYTES
"""Bytes a chunk adds to its plaintext: flag, length and the GCM tag."""
