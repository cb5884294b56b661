"""TLS material for gRPC: credentials for each side from a party directory.

A party directory (:mod:`shared.pki.layout`) holds ``cert.pem``, ``key.pem`` (encrypted) and
``ca.pem``. Server side::

    creds = server_credentials(Path("pki/server"), passphrase, now=clock())
    server.add_secure_port("127.0.0.1:50051", creds)

or, to reload the certificate and CA bundle without a restart (SIGHUP)::

    creds, reloader = reloading_server_credentials(Path("pki/server"), passphrase, clock=clock)
    signal.signal(signal.SIGHUP, lambda *_: reloader.request_reload())

Client side::

    channel = grpc.secure_channel("localhost:50051", channel_credentials(Path("pki/svb"), pw))

Both sides require a certificate from the peer: the server is built with
``require_client_auth=True``, so a client without a certificate from the CA bundle is refused
in the handshake. gRPC's BoringSSL negotiates TLS 1.3 or 1.2 (never lower); see
docs/identity.md for the cipher suites and forward secrecy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import grpc

from shared.pki.errors import PkiError
from shared.pki.identity import (
    Identity,
    check_validity,
    identity_of,
    load_certificate,
    load_certificates,
)
from shared.pki.keystore import load_private_key, unsafe_private_pem
from shared.pki.layout import PartyFiles

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class TlsMaterial:
    """One party's certificate chain, private key (decrypted, in memory) and CA bundle."""

    certificate_chain: bytes
    private_key: bytes = field(repr=False)
    ca_bundle: bytes
    identity: Identity

    @classmethod
    def load(cls, directory: Path, passphrase: bytes, *, now: datetime) -> TlsMaterial:
        """Read and check a party directory: the key opens and matches, the cert is valid now."""
        files = PartyFiles(directory)
        chain = files.read(files.cert)
        ca_bundle = files.read(files.ca_bundle)
        cert = load_certificate(chain, where=str(files.cert))
        check_validity(cert, now, where=f"own certificate {files.cert}")
        load_certificates(ca_bundle, where=str(files.ca_bundle))
        key = load_private_key(files.key, passphrase)
        if key.public_key() != cert.public_key():
            raise PkiError(f"{files.key}: the private key does not belong to {files.cert}")
        return cls(
            certificate_chain=chain,
            private_key=unsafe_private_pem(key),
            ca_bundle=ca_bundle,
            identity=identity_of(cert, where=str(files.cert)),
        )

    def server_credentials(self) -> grpc.ServerCredentials:
        """Server credentials that require and verify a client certificate."""
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate_chain)],
            root_certificates=self.ca_bundle,
            require_client_auth=True,
        )

    def certificate_configuration(self) -> grpc.ServerCertificateConfiguration:
        """The same material as a reloadable server certificate configuration."""
        return grpc.ssl_server_certificate_configuration(
            [(self.private_key, self.certificate_chain)], root_certificates=self.ca_bundle
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Client credentials: present this certificate, verify the server against the bundle."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_bundle,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )


def server_credentials(
    directory: Path, passphrase: bytes, *, now: datetime
) -> grpc.ServerCredentials:
    """Mutual-TLS server credentials from a party directory (client certificates required)."""
    return TlsMaterial.load(directory, passphrase, now=now).server_credentials()


def channel_credentials(
    directory: Path, passphrase: bytes, *, now: datetime
) -> grpc.ChannelCredentials:
    """Mutual-TLS channel credentials from a party directory."""
    return TlsMaterial.load(directory, passphrase, now=now).channel_credentials()


class CertificateReloader:
    """gRPC's certificate configuration fetcher, reloading a party directory on request.

    gRPC calls the fetcher before a new handshake; it returns ``None`` (keep the current
    material) unless :meth:`request_reload` was called since. Established connections and
    in-flight calls keep the material they were made with. A reload that fails (missing file,
    wrong passphrase, expired certificate) is logged, kept in :attr:`last_error`, and the
    current material stays in use: a bad rotation never takes the server down.
    :meth:`request_reload` only sets a flag, so it is safe to call from a signal handler.
    """

    def __init__(self, directory: Path, passphrase: bytes, *, clock: Clock) -> None:
        self.directory = directory
        self._passphrase = passphrase
        self._clock = clock
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self.material = TlsMaterial.load(directory, passphrase, now=clock())
        self.last_error: PkiError | None = None
        self.reloads = 0
        self._pending = False

    def __repr__(self) -> str:
        return f"CertificateReloader({str(self.directory)!r}, reloads={self.reloads})"

    def request_reload(self) -> None:
        """Reload before the next handshake (call from a SIGHUP handler)."""
        self._wanted.set()

    def reload_now(self) -> Identity:
        """Load the directory now; the new identity, or the :class:`PkiError` raised."""
        material = TlsMaterial.load(self.directory, self._passphrase, now=self._clock())
        with self._lock:
            self.material = material
            self.reloads += 1
            self._pending = True
        return material.identity

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        if self._wanted.is_set():
            self._wanted.clear()
            try:
                identity = self.reload_now()
            except PkiError as exc:
                self.last_error = exc
                log.error("TLS material not reloaded, keeping the current one: %s", exc)
            else:
                self.last_error = None
                log.info("TLS material reloaded from %s: %s", self.directory, identity)
        with self._lock:
            pending, self._pending = self._pending, False
            material = self.material
        return material.certificate_configuration() if pending else None


def reloading_server_credentials(
    directory: Path, passphrase: bytes, *, clock: Clock
) -> tuple[grpc.ServerCredentials, CertificateReloader]:
    """Mutual-TLS server credentials that reload ``directory`` when asked (see the reloader)."""
    reloader = CertificateReloader(directory, passphrase, clock=clock)
    creds = grpc.dynamic_ssl_server_credentials(
        reloader.material.certificate_configuration(),
        reloader,  # type: ignore[arg-type]  # returning None means "no change" (gRPC docs)
        require_client_authentication=True,
    )
    return creds, reloader
