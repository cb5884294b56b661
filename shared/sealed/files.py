"""Sealed files on disk: written atomically with their sidecar, opened with it checked.

:func:`create_sealed_file` writes to ``<path>.partial``, fsyncs, and renames onto ``path``
only when the trailer is written, then writes the sidecar: a crash leaves no file under the
final name that looks complete. :func:`open_sealed_file` checks the sidecar first when there is
one (a quick way to catch a mixed-up transfer), then opens the file itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from cryptography import x509

from shared.sealed.errors import SidecarMismatch
from shared.sealed.header import DEFAULT_CHUNK_SIZE, InReplyTo, MessageKind
from shared.sealed.identity import ReceiverKey, Recipient, SenderKey, SenderVerifier
from shared.sealed.processed import ProcessedIds
from shared.sealed.reader import SealedReader
from shared.sealed.sidecar import check_sidecar, read_sidecar, sidecar_path, write_sidecar
from shared.sealed.writer import SealedSummary, SealedWriter


@contextmanager
def create_sealed_file(
    path: Path,
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
) -> Iterator[SealedWriter]:
    """A :class:`SealedWriter` onto ``path``; on a clean exit the file is complete, fsynced,
    renamed into place and has its sidecar; on an exception the partial file is removed."""
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("wb") as out:
        try:
            writer = SealedWriter(
                out,
                sender=sender,
                recipient=recipient,
                kind=kind,
                message_id=message_id,
                content_type=content_type,
                clock=clock,
                in_reply_to=in_reply_to,
                chunk_size=chunk_size,
                random_bytes=random_bytes,
                reply_certificate=reply_certificate,
            )
            yield writer
            summary = writer.close()
            out.flush()
            os.fsync(out.fileno())
        except BaseException:
            out.close()
            tmp.unlink(missing_ok=True)
            raise
    tmp.replace(path)
    write_sidecar(path, summary)


@contextmanager
def open_sealed_file(
    path: Path,
    *,
    receiver: ReceiverKey,
    senders: SenderVerifier,
    kinds: Collection[MessageKind],
    reply_to: InReplyTo | None = None,
    processed: ProcessedIds | None = None,
    require_sidecar: bool = False,
    expect_header_sha256: str | None = None,
) -> Iterator[SealedReader]:
    """An opened :class:`SealedReader` on ``path``, its sidecar checked if present."""
    side = sidecar_path(path)
    if side.exists():
        car = read_sidecar(side)
        check_sidecar(path, car)
    elif require_sidecar:
        raise SidecarMismatch(f"{path}: no sidecar {side.name} next to it")
    src: BinaryIO
    with path.open("rb") as src:
        yield SealedReader.open(
            src,
            receiver=receiver,
            senders=senders,
            kinds=kinds,
            reply_to=reply_to,
            processed=processed,
            name=str(path),
            expect_header_sha256=expect_header_sha256,
        )


def verify_sealed_file(
    path: Path,
    *,
    receiver: ReceiverKey,
    senders: SenderVerifier,
    kinds: Collection[MessageKind],
    reply_to: InReplyTo | None = None,
    processed: ProcessedIds | None = None,
) -> SealedSummary:
    """Read ``path`` to its end and check everything (chunks, trailer), discarding the payload.

    The first of two passes for a receiver whose processing has effects that cannot be undone
    (charging a budget, recording decisions): pass 2 opens the file again with
    ``expect_header_sha256=summary.header_sha256`` and acts on its chunks. Costs one extra
    AES-GCM pass over the file (about a second per GB), no memory."""
    with open_sealed_file(
        path,
        receiver=receiver,
        senders=senders,
        kinds=kinds,
        reply_to=reply_to,
        processed=processed,
    ) as reader:
        for _ in reader.chunks():
            pass
        assert reader.summary is not None
        return reader.summary
