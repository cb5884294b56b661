"""Sealed files: signed by the sender, encrypted to the receiver, streamed in chunks.

The offline path between SVB and UWV (DESIGN §3c): any request or response can travel as one
file that an operator moves by whatever channel they have. Built from standards, each through
``cryptography``: HPKE base mode (RFC 9180) seals a fresh file key to the receiver's X25519 or
P-256 key; the payload is STREAM (Hoang et al. 2015) over AES-256-GCM with HKDF (RFC 5869),
chunk by chunk; the sender signs the header and the whole transcript with its X.509 identity
(Ed25519, RFC 8032, or ECDSA P-256), the OIN in the subject ``serialNumber``. The format, byte
by byte, and what a reader refuses: ``docs/sealed-files.md``.

Public API: :class:`SealedWriter` / :func:`create_sealed_file` to write,
:class:`SealedReader` / :func:`open_sealed_file` to read, :class:`Header` and
:class:`MessageKind` for what the header says, identities (:class:`SenderKey`,
:class:`Recipient`, :class:`ReceiverKey`, :class:`TrustedSenders`), records for messages in a
payload, the sidecar, and the replay store. Errors: :mod:`shared.sealed.errors`.
"""

from __future__ import annotations

from shared.sealed.errors import (
    MalformedFile,
    NotAddressedToUs,
    ReplayRefused,
    SealedError,
    SidecarMismatch,
    SignerRefused,
    TamperedFile,
    TruncatedFile,
)
from shared.sealed.files import create_sealed_file, open_sealed_file, verify_sealed_file
from shared.sealed.header import (
    DEFAULT_CHUNK_SIZE,
    Header,
    InReplyTo,
    MessageKind,
)
from shared.sealed.identity import (
    Party,
    ReceiverKey,
    Recipient,
    SenderKey,
    SenderVerifier,
    TrustedSenders,
    key_id,
    oin_of,
)
from shared.sealed.processed import (
    MemoryProcessedIds,
    Processed,
    ProcessedIds,
    SqliteProcessedIds,
)
from shared.sealed.reader import SealedReader
from shared.sealed.records import iter_records, write_record
from shared.sealed.sidecar import Sidecar, check_sidecar, read_sidecar, sidecar_path, write_sidecar
from shared.sealed.writer import SealedSummary, SealedWriter

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "Header",
    "InReplyTo",
    "MalformedFile",
    "MemoryProcessedIds",
    "MessageKind",
    "NotAddressedToUs",
    "Party",
    "Processed",
    "ProcessedIds",
    "ReceiverKey",
    "Recipient",
    "ReplayRefused",
    "SealedError",
    "SealedReader",
    "SealedSummary",
    "SealedWriter",
    "SenderKey",
    "SenderVerifier",
    "Sidecar",
    "SidecarMismatch",
    "SignerRefused",
    "SqliteProcessedIds",
    "TamperedFile",
    "TruncatedFile",
    "TrustedSenders",
    "check_sidecar",
    "create_sealed_file",
    "iter_records",
    "key_id",
    "oin_of",
    "open_sealed_file",
    "read_sidecar",
    "sidecar_path",
    "verify_sealed_file",
    "write_record",
    "write_sidecar",
]
