"""Opening a sealed file: every check before the first chunk, then chunk by chunk.

::

    reader = SealedReader.open(src, receiver=our_key, senders=trusted,
                               kinds={MessageKind.REQUEST}, processed=store)
    reader.header, reader.sender, reader.previous   # known before any payload byte
    for plaintext in reader.chunks():               # each chunk authenticated as it comes
        ...
    reader.summary                                  # set once the signed trailer verified
    reader.mark_processed()                         # after the caller committed its effects

Before any chunk is returned, :meth:`SealedReader.open` has checked, in this order: the magic
and version; the header (canonical JSON, every field valid); that it is addressed to our OIN
and our key id and is of a kind the caller accepts; for a reply, that it answers the request
the caller waits for; the sender's certificate chain, OIN and authorisation; the sender's
signature over header and key block; that our key opens the key block; and the replay store.
A chunk is returned only after its tag verified at its position. Truncation shows as a
:class:`TruncatedFile` at the end; a caller that acts on chunks as they come must be able to
undo (or never commit) what it did if the iteration raises.
"""

from __future__ import annotations

import hashlib
import struct
import warnings
from collections.abc import Collection, Iterator
from typing import BinaryIO

from cryptography import x509

from shared.sealed import _hpke, layout
from shared.sealed._stream import TAG_BYTES, ChunkCipher
from shared.sealed.errors import (
    MalformedFile,
    NotAddressedToUs,
    ReplayRefused,
    SignerRefused,
    TamperedFile,
    TruncatedFile,
)
from shared.sealed.header import (
    MAX_HEADER_BYTES,
    REPLY_KINDS,
    InReplyTo,
    MessageKind,
    parse_header,
)
from shared.sealed.identity import (
    Party,
    ReceiverKey,
    Recipient,
    SenderVerifier,
    verify_signature,
)
from shared.sealed.processed import Processed, ProcessedIds
from shared.sealed.writer import SealedSummary


class SealedReader:
    """An opened, verified sealed file whose chunks are read on demand."""

    @classmethod
    def open(
        cls,
        src: BinaryIO,
        *,
        receiver: ReceiverKey,
        senders: SenderVerifier,
        kinds: Collection[MessageKind],
        reply_to: InReplyTo | None = None,
        processed: ProcessedIds | None = None,
        name: str = "sealed file",
        expect_header_sha256: str | None = None,
    ) -> SealedReader:
        """Same as the constructor."""
        return cls(
            src,
            receiver=receiver,
            senders=senders,
            kinds=kinds,
            reply_to=reply_to,
            processed=processed,
            name=name,
            expect_header_sha256=expect_header_sha256,
        )

    def __init__(
        self,
        src: BinaryIO,
        *,
        receiver: ReceiverKey,
        senders: SenderVerifier,
        kinds: Collection[MessageKind],
        reply_to: InReplyTo | None = None,
        processed: ProcessedIds | None = None,
        name: str = "sealed file",
        expect_header_sha256: str | None = None,
    ) -> None:
        """Check everything up to the first chunk; raise a :class:`SealedError` subclass if not.

        ``reply_to`` is required when ``kinds`` contains a reply kind: the request this
        receiver waits an answer for (its id and the SHA-256 of the request file).
        ``expect_header_sha256`` refuses any file but the one verified before (two passes:
        verify the whole file, then act on it, see :func:`shared.sealed.verify_sealed_file`)."""
        self._src = src
        self._name = name
        self._offset = 0
        self._hash = hashlib.sha256()
        self._processed = processed
        self.summary: SealedSummary | None = None

        magic = self._read(len(layout.MAGIC) + 1, "the magic number")
        if magic[:-1] != layout.MAGIC:
            raise MalformedFile(
                f"{name}: byte 0: not a sealed file (magic {magic[:-1].hex()}, expected "
                f"{layout.MAGIC.hex()}); a transfer in text mode also breaks it"
            )
        if magic[-1] != layout.VERSION:
            raise MalformedFile(
                f"{name}: byte 8: sealed-file version {magic[-1]}, this reader reads "
                f"version {layout.VERSION}"
            )
        (header_len,) = struct.unpack(">I", self._read(4, "the header length"))
        if not 2 <= header_len <= MAX_HEADER_BYTES:
            raise MalformedFile(
                f"{name}: byte 9: header length {header_len} outside 2..{MAX_HEADER_BYTES}"
            )
        header_at = self._offset
        encoded = self._read(header_len, "the header")
        header = parse_header(encoded, offset=header_at)
        prefix_digest = self._hash.copy().digest()
        self.header = header

        # addressed to us, and of a kind we take
        if header.receiver.oin != receiver.oin:
            raise NotAddressedToUs(
                f"{name}: addressed to OIN {header.receiver.oin}, we are {receiver.oin}"
            )
        if header.receiver.key_id != receiver.key_id:
            raise NotAddressedToUs(
                f"{name}: sealed to key {header.receiver.key_id[:16]}…, our key is "
                f"{receiver.key_id[:16]}… (an old or another key of OIN {receiver.oin})"
            )
        if header.kind not in kinds:
            wanted = ", ".join(sorted(k.value for k in kinds))
            raise NotAddressedToUs(
                f"{name}: a {header.kind.value} (message {header.message_id}); this step "
                f"takes: {wanted}"
            )
        if header.kind in REPLY_KINDS:
            if reply_to is None:
                raise ReplayRefused(
                    f"{name}: a {header.kind.value} to request "
                    f"{header.in_reply_to.message_id if header.in_reply_to else '?'}, but no "
                    "request is awaiting an answer"
                )
            if header.in_reply_to != reply_to:
                got = header.in_reply_to
                assert got is not None
                raise ReplayRefused(
                    f"{name}: answers request {got.message_id} (file sha256 {got.sha256[:16]}…), "
                    f"but the request awaiting an answer is {reply_to.message_id} (file sha256 "
                    f"{reply_to.sha256[:16]}…)"
                )

        # who sent it
        chain = []
        for i, der in enumerate(header.sender.certificate_der()):
            try:
                with warnings.catch_warnings():  # a peer's odd certificate is refused, not warned
                    warnings.simplefilter("ignore")
                    chain.append(x509.load_der_x509_certificate(der))
            except ValueError:
                raise MalformedFile(
                    f"{name}: header field sender.certificates.{i}: not a DER certificate"
                ) from None
        try:
            party = senders.verify(chain, header.kind)
        except ValueError as exc:  # cryptography parses certificate fields lazily
            raise SignerRefused(f"{name}: the sender certificate is malformed: {exc}") from None
        if party.oin != header.sender.oin:
            raise SignerRefused(
                f"{name}: the header names sender OIN {header.sender.oin}, its certificate "
                f"is of OIN {party.oin}"
            )
        self.sender: Party = party

        key_block = self._read(_hpke.key_block_length(header.suite), "the key block")
        signed = self._hash.copy().digest()
        signature = self._signature("the header signature")
        if not verify_signature(chain[0], signature, layout.HEADER_SIGNATURE_CONTEXT + signed):
            raise SignerRefused(
                f"{name}: the header signature does not verify under the certificate of "
                f"{party}: header or key block altered, or signed by another key"
            )
        self._header_sha256 = self._hash.hexdigest()
        if expect_header_sha256 is not None and expect_header_sha256 != self._header_sha256:
            raise ReplayRefused(
                f"{name}: is not the file verified before (header sha256 "
                f"{self._header_sha256[:16]}…, verified {expect_header_sha256[:16]}…): it was "
                "replaced in between"
            )
        self.reply_recipient: Recipient | None = None
        reply_der = header.sender.reply_certificate_der()
        if reply_der is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    reply_cert = x509.load_der_x509_certificate(reply_der)
                self.reply_recipient = senders.verify_recipient(reply_cert, party.oin)
            except ValueError as exc:
                raise SignerRefused(f"{name}: the reply certificate is malformed: {exc}") from None
        file_key = _hpke.open_file_key(
            key_block, receiver, header.suite, info=layout.KEY_INFO_CONTEXT + prefix_digest
        )
        self._cipher = ChunkCipher(file_key, prefix_digest)
        self._leaf = chain[0]

        self.previous: Processed | None = None
        if processed is not None:
            previous = processed.get(party.oin, header.message_id)
            if previous is not None and previous.header_sha256 != self._header_sha256:
                raise ReplayRefused(
                    f"{name}: message id {header.message_id} from {party} was already "
                    f"processed from another file (sha256 {previous.file_sha256[:16]}…); a new "
                    "message needs a new id"
                )
            self.previous = previous
        self._started = False

    # -- reading ------------------------------------------------------------------------

    def _read(self, n: int, what: str) -> bytes:
        parts = []
        wanted = n
        while wanted:
            piece = self._src.read(wanted)
            if not piece:
                got = n - wanted
                raise TruncatedFile(
                    f"{self._name}: ends at byte {self._offset + got} inside {what} "
                    f"({got} of {n} bytes): the file is cut short"
                )
            parts.append(piece)
            wanted -= len(piece)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._hash.update(data)
        self._offset += n
        return data

    def _signature(self, what: str) -> bytes:
        at = self._offset
        (length,) = struct.unpack(">H", self._read(2, f"the length of {what}"))
        if not 1 <= length <= layout.MAX_SIGNATURE_BYTES:
            raise MalformedFile(
                f"{self._name}: byte {at}: {what} has length {length}, outside "
                f"1..{layout.MAX_SIGNATURE_BYTES}"
            )
        return self._read(length, what)

    def chunks(self) -> Iterator[bytes]:
        """The plaintext chunks in order, each authenticated; then the trailer is verified.

        Can be iterated once. Raises :class:`TamperedFile`, :class:`TruncatedFile`,
        :class:`MalformedFile` or :class:`SignerRefused` where the file goes wrong."""
        if self._started:
            raise ValueError("the chunks of a sealed file can be read once")
        self._started = True
        size = self.header.chunk_size
        index = 0
        plaintext_bytes = 0
        while True:
            at = self._offset
            flag, length = struct.unpack(">BI", self._read(5, f"the frame of chunk {index}"))
            if flag not in (layout.FLAG_MORE, layout.FLAG_LAST):
                raise TamperedFile(
                    f"{self._name}: byte {at}: chunk {index} has flag 0x{flag:02x}, expected "
                    "0x00 or 0x01: the file was altered, or cut before its last chunk"
                )
            last = flag == layout.FLAG_LAST
            if not last and length != size + TAG_BYTES:
                raise TamperedFile(
                    f"{self._name}: byte {at}: chunk {index} has {length} bytes, a chunk before "
                    f"the last has {size + TAG_BYTES}: the file was altered or cut"
                )
            if last and not TAG_BYTES <= length <= size + TAG_BYTES:
                raise TamperedFile(
                    f"{self._name}: byte {at}: last chunk {index} has {length} bytes, outside "
                    f"{TAG_BYTES}..{size + TAG_BYTES}"
                )
            if last and index > 0 and length == TAG_BYTES:
                raise TamperedFile(
                    f"{self._name}: byte {at}: an empty last chunk {index} after a full one "
                    "(a writer never makes one)"
                )
            ciphertext = self._read(length, f"chunk {index}")
            plaintext = self._cipher.open(index, last, ciphertext)
            del ciphertext
            plaintext_bytes += len(plaintext)
            yield plaintext
            del plaintext
            index += 1
            if last:
                break
        transcript = self._hash.copy().digest()
        signature = self._signature("the transcript signature")
        if not verify_signature(
            self._leaf, signature, layout.TRANSCRIPT_SIGNATURE_CONTEXT + transcript
        ):
            raise SignerRefused(
                f"{self._name}: the transcript signature does not verify under the certificate "
                f"of {self.sender}"
            )
        extra = self._src.read(1)
        if extra:
            raise MalformedFile(
                f"{self._name}: byte {self._offset}: data after the signed trailer (the file "
                "ends at the trailer)"
            )
        self.summary = SealedSummary(
            header=self.header,
            size=self._offset,
            sha256=self._hash.hexdigest(),
            header_sha256=self._header_sha256,
            plaintext_bytes=plaintext_bytes,
            chunks=index,
        )

    def read_all(self, limit: int = 64 << 20) -> bytes:
        """The whole payload (for small files); :class:`MalformedFile` past ``limit`` bytes."""
        parts: list[bytes] = []
        total = 0
        for chunk in self.chunks():
            total += len(chunk)
            if total > limit:
                raise MalformedFile(f"{self._name}: payload larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def mark_processed(self) -> Processed:
        """Record this file in the replay store; only after the whole file verified."""
        if self.summary is None:
            raise ValueError("mark a sealed file processed only after reading it to its end")
        record = Processed(
            sender_oin=self.sender.oin,
            message_id=self.header.message_id,
            header_sha256=self.summary.header_sha256,
            file_sha256=self.summary.sha256,
        )
        if self._processed is not None:
            self._processed.add(record)
        return record
