"""The directory layout of a development PKI, and of one party's TLS material.

``uwv-server pki init DIR`` writes::

    DIR/
      ca/ca.pem            the CA certificate: the trust anchor every party gets a copy of
      ca/ca.key.pem        the CA private key, encrypted; it never leaves DIR/ca
      server/              UWV's gRPC server (profile server, SAN localhost/127.0.0.1/::1)
      svb/                 SVB's client (profile client)
      auditor/             the auditor's client (profile client)
      uwv-operator/        UWV's operator tools (profile client)

and every party directory holds the same three files::

      cert.pem             its certificate (PEM; the chain if an intermediate is ever used)
      key.pem              its private key, encrypted PKCS#8 (mode 0600)
      ca.pem               the CA bundle it trusts to verify its peer

A party directory is what one hands to that party (with the passphrase, separately); the TLS
helpers of :mod:`shared.pki.tls` take exactly such a directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from shared.pki.errors import PkiLayoutError

CA_DIR: Final = "ca"
CERT_FILE: Final = "cert.pem"
KEY_FILE: Final = "key.pem"
CA_BUNDLE_FILE: Final = "ca.pem"
CA_KEY_FILE: Final = "ca.key.pem"


@dataclass(frozen=True)
class PartyFiles:
    """The three files of one party's TLS material in ``directory``."""

    directory: Path

    @property
    def cert(self) -> Path:
        return self.directory / CERT_FILE

    @property
    def key(self) -> Path:
        return self.directory / KEY_FILE

    @property
    def ca_bundle(self) -> Path:
        return self.directory / CA_BUNDLE_FILE

    def read(self, path: Path, *, limit: int = 256 * 1024) -> bytes:
        """A file of this party, bounded, with a message naming what is missing."""
        try:
            with path.open("rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError:
            raise PkiLayoutError(
                f"{path}: missing; a TLS directory holds {CERT_FILE}, {KEY_FILE} and "
                f"{CA_BUNDLE_FILE} (see docs/identity.md, or run `uwv-server pki init`)"
            ) from None
        except OSError as exc:
            raise PkiLayoutError(f"{path}: cannot read: {exc.strerror}") from None
        if len(data) > limit:
            raise PkiLayoutError(f"{path}: larger than {limit} bytes")
        return data


@dataclass(frozen=True)
class PkiLayout:
    """The paths of a development PKI rooted at ``root``."""

    root: Path

    @property
    def ca_dir(self) -> Path:
        return self.root / CA_DIR

    @property
    def ca_cert(self) -> Path:
        return self.ca_dir / CA_BUNDLE_FILE

    @property
    def ca_key(self) -> Path:
        return self.ca_dir / CA_KEY_FILE

    def party(self, name: str) -> PartyFiles:
        """The files of party ``name`` (a plain directory name such as ``svb``)."""
        if (
            not name
            or name in (CA_DIR, ".", "..")
            or not all(c.isalnum() or c in "-_" for c in name)
            or len(name) > 64
        ):
            raise PkiLayoutError(
                f"party name {name!r}: expected letters, digits, '-' or '_' (not {CA_DIR!r})"
            )
        return PartyFiles(self.root / name)
