"""Errors of :mod:`shared.pki`, rooted in :class:`shared.errors.Error`.

Hierarchy::

    PkiError                      root of this package
    ├── OinError                  an OIN that is not 20 digits
    ├── KeyAtRestError            a key file that is missing, unencrypted, or opened with a wrong
    │                             passphrase; a passphrase that is missing, empty or too long
    ├── PkiLayoutError            a PKI directory that is missing files, or exists already
    └── CertificateError          a certificate that is malformed or does not identify anyone
        ├── CertificateExpired        valid until a moment before ``now``
        ├── CertificateNotYetValid    valid from a moment after ``now``
        └── UntrustedCertificate      not issued (for this purpose) by a trusted CA
"""

from __future__ import annotations

from shared.errors import Error


class PkiError(Error):
    """Root of the certificate, identity and TLS material errors."""


class OinError(PkiError):
    """An organisation identification number (OIN) that is not exactly 20 digits."""


class KeyAtRestError(PkiError):
    """A private key file or passphrase that cannot be used: missing, unencrypted, wrong."""


class PkiLayoutError(PkiError):
    """A PKI directory that lacks a file it should have, or exists when it should not."""


class CertificateError(PkiError):
    """A certificate that does not parse, or whose subject does not name an organisation."""


class CertificateExpired(CertificateError):
    """A certificate whose validity ended before the time it was checked at."""


class CertificateNotYetValid(CertificateError):
    """A certificate whose validity starts after the time it was checked at."""


class UntrustedCertificate(CertificateError):
    """A certificate that does not chain to a trusted CA, or not for the asked purpose."""
