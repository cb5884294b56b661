"""Errors of :mod:`shared.sealed`, rooted in :class:`shared.errors.Error`.

Every refusal names what was wrong and where (byte offset, chunk number, header field), so an
operator who carried a file by hand can tell a damaged transfer from a file that was never
meant for them.

Hierarchy::

    SealedError               root of this package
    ├── MalformedFile         not a sealed file, or its framing is broken (offset named)
    ├── NotAddressedToUs      another receiver's OIN or key id, or an unexpected message kind
    ├── SignerRefused         a sender certificate that does not chain to a trusted root,
    │                         has expired, names another OIN, or a party not authorised for
    │                         this kind of message; or a signature that does not verify
    ├── TamperedFile          a chunk whose authentication tag fails: altered, reordered,
    │                         dropped or inserted (chunk number named)
    ├── TruncatedFile         the file ends before its last chunk and signed trailer
    ├── ReplayRefused         a message id already processed from another file, or a
    │                         response that answers another request
    └── SidecarMismatch       a sidecar that does not describe the file next to it
"""

from __future__ import annotations

from shared.errors import Error


class SealedError(Error):
    """Root of the sealed-file errors."""


class MalformedFile(SealedError):
    """Not a sealed file of a version we read, or framing that does not parse."""


class NotAddressedToUs(SealedError):
    """A file for another receiver (OIN or key id), or of a kind this step does not take."""


class SignerRefused(SealedError):
    """The sender is not trusted or not authorised, or its signature does not verify."""


class TamperedFile(SealedError):
    """A chunk that fails authentication: altered, reordered, dropped or inserted."""


class TruncatedFile(SealedError):
    """The file ends before its last chunk and its signed trailer."""


class ReplayRefused(SealedError):
    """A message id already processed from another file, or a reply to another request."""


class SidecarMismatch(SealedError):
    """A sidecar whose size, checksum or parties do not match the sealed file."""
