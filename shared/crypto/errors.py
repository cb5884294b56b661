"""Errors of :mod:`shared.crypto`, rooted in :class:`shared.errors.Error`.

Hierarchy::

    SigningError              root of this package
    ├── KeyFileError          a key file that is missing, corrupt, or opened with a wrong passphrase
    ├── RegistryError         a key registry file that does not parse, or an unknown key id
    ├── RoleError             a signature by a key that lacks the role the action needs
    ├── SignatureInvalid      a signature that does not verify, or an envelope that is malformed
    └── StatementMismatch     a run statement that verifies but does not describe what was asked
"""

from __future__ import annotations

from shared.errors import Error


class SigningError(Error):
    """Root of the signing, key and statement errors."""


class KeyFileError(SigningError):
    """A key file that is missing, corrupt, or opened with a wrong passphrase."""


class RegistryError(SigningError):
    """A key registry that does not parse, or a key id it does not list."""


class RoleError(SigningError):
    """A signature by a key that is registered, but not for the role the action needs."""


class SignatureInvalid(SigningError):
    """A signature that does not verify, or a signed envelope that is malformed."""


class StatementMismatch(SigningError):
    """A correctly signed run statement that does not describe the run that was asked for."""
