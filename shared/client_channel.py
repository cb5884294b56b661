"""How a client reaches UWV: mutual TLS by default, plaintext only on loopback and by name.

Used by ``svb-client`` (:class:`svb_client.wire.grpc_transport.GrpcTransport`) and
``aio-audit fetch``. The TLS material is one party directory as ``uwv-server pki init``
writes it (``cert.pem``, ``key.pem`` encrypted, ``ca.pem``; see docs/identity.md); the
credentials come from :mod:`shared.pki`. The client presents its certificate and verifies
UWV's against ``ca.pem`` and the host name. Without a certificate the channel is refused
here, before any connection; ``--unsafe-insecure`` opens a plaintext channel, and only to a
loopback address.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from shared.errors import Error
from shared.wire import CHANNEL_OPTIONS

if TYPE_CHECKING:
    import grpc

log = logging.getLogger("shared.client_channel")

Clock = Callable[[], datetime]
LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain"})
PASSPHRASE_ENV: Final = "AIO_PKI_PASSPHRASE"
"""= shared.pki.PASSPHRASE_ENV, not imported from there: shared.pki (and this module's
``open``) load gRPC, which commands that only build their parser need not (a test pins it)."""


class ChannelError(Error):
    """No channel can be opened as asked (no TLS material, plaintext to a remote host …)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def host_of(target: str) -> str:
    """The host part of a gRPC target ``HOST:PORT``, ``[IPv6]:PORT`` or ``dns:///HOST:PORT``."""
    text = target.split("///", 1)[-1]
    if text.startswith("["):
        return text[1:].split("]", 1)[0]
    if text.count(":") > 1:  # a bare IPv6 address without a port
        return text
    return text.rsplit(":", 1)[0] if ":" in text else text


def is_loopback(target: str) -> bool:
    """True if ``target`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    host = host_of(target).lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ChannelSecurity:
    """How to protect a channel: mutual TLS from a party directory, or unsafe plaintext."""

    tls_dir: Path | None = None
    passphrase: bytes = field(default=b"", repr=False)
    unsafe_insecure: bool = False
    clock: Clock = _utc_now
    """When to check the certificates' validity (injected in tests)."""

    @classmethod
    def mutual_tls(
        cls, tls_dir: Path, passphrase: bytes, *, clock: Clock = _utc_now
    ) -> ChannelSecurity:
        return cls(tls_dir=tls_dir, passphrase=passphrase, clock=clock)

    @classmethod
    def unsafe_plaintext(cls) -> ChannelSecurity:
        """No encryption, no authentication: only for a server on this machine (tests, demo)."""
        return cls(unsafe_insecure=True)

    def open(
        self, target: str, options: Sequence[tuple[str, int]] = CHANNEL_OPTIONS
    ) -> grpc.Channel:
        """A channel to ``target`` with the contract's message limits."""
        import grpc

        from shared.pki import channel_credentials

        if self.unsafe_insecure:
            if not is_loopback(target):
                raise ChannelError(
                    f"--unsafe-insecure is only for a loopback address; {target} is not one. "
                    "Use --tls-dir DIR for mutual TLS"
                )
            log.warning("UNSAFE: plaintext channel to %s (no TLS, no authentication)", target)
            return grpc.insecure_channel(target, options=list(options))
        if self.tls_dir is None:
            raise ChannelError(
                "UWV is reached over mutual TLS: give --tls-dir DIR (this party's cert.pem, "
                "key.pem and ca.pem, as `uwv-server pki init` writes them), or "
                "--unsafe-insecure for plaintext to a server on this machine"
            )
        creds = channel_credentials(self.tls_dir, self.passphrase, now=self.clock())
        return grpc.secure_channel(target, creds, options=list(options))


def add_channel_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tls-dir``, ``--tls-passphrase-file`` and ``--unsafe-insecure``."""
    parser.add_argument(
        "--tls-dir",
        type=Path,
        help="this party's TLS directory (cert.pem, key.pem, ca.pem; e.g. pki/svb from "
        "`uwv-server pki init`): mutual TLS, the default and the only way to a remote server",
    )
    parser.add_argument(
        "--tls-passphrase-file",
        type=Path,
        help=f"passphrase of the TLS key (first line; default: ${PASSPHRASE_ENV})",
    )
    parser.add_argument(
        "--unsafe-insecure",
        action="store_true",
        help="UNSAFE: plaintext, unauthenticated channel; only to a loopback address",
    )


def channel_security(args: argparse.Namespace, *, clock: Clock = _utc_now) -> ChannelSecurity:
    """The channel security the command line asks for (see :func:`add_channel_arguments`)."""
    if args.unsafe_insecure:
        if args.tls_dir is not None:
            raise ChannelError("give either --tls-dir or --unsafe-insecure, not both")
        return ChannelSecurity.unsafe_plaintext()
    if args.tls_dir is None:
        return ChannelSecurity()  # refuses to open, with the message that says what to give
    from shared.pki import read_passphrase

    return ChannelSecurity.mutual_tls(
        args.tls_dir, read_passphrase(args.tls_passphrase_file), clock=clock
    )
