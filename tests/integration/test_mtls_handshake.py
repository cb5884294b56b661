"""Mutual TLS with the development PKI on a real gRPC server on a free localhost port.

A tiny server (health service and a "who am I" method that answers with the OIN the server
read from the verified client certificate) built with shared.pki's credentials. The
service-level tests (roles per RPC, requester checks) are the server layer's.
"""

from __future__ import annotations

import shutil
import socket
import ssl
from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from shared.pki import (
    SVB,
    CertificateReloader,
    PkiLayout,
    channel_credentials,
    identity_from_auth_context,
    init_dev_pki,
    reloading_server_credentials,
)

PASSPHRASE = b"integration passphrase"
WHOAMI = "/pki.test.WhoAmI/Get"


def _now() -> datetime:
    return datetime.now(UTC)


def _whoami(request: bytes, context: grpc.ServicerContext) -> bytes:
    ident = identity_from_auth_context(context.auth_context(), now=_now())
    return f"{ident.oin} {ident.organisation}".encode()


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("mtls")
    ours, other = base / "ours", base / "other"
    init_dev_pki(ours, PASSPHRASE, now=_now(), days=30)
    init_dev_pki(other, PASSPHRASE, now=_now(), days=30)
    return ours, other


@pytest.fixture
def server(
    pkis: tuple[Path, Path], tmp_path: Path
) -> Iterator[tuple[int, CertificateReloader, Path]]:
    served = tmp_path / "server"
    shutil.copytree(PkiLayout(pkis[0]).party("server").directory, served)
    creds, reloader = reloading_server_credentials(served, PASSPHRASE, clock=_now)
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), srv)
    handler = grpc.unary_unary_rpc_method_handler(_whoami)
    srv.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("pki.test.WhoAmI", {"Get": handler})]
    )
    port = srv.add_secure_port("127.0.0.1:0", creds)
    srv.start()
    yield port, reloader, served
    srv.stop(grace=None)


_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]  # no connection reuse across channels


def _call(port: int, creds: grpc.ChannelCredentials | None, *, host: str = "localhost") -> str:
    target = f"{host}:{port}"
    with (
        grpc.secure_channel(target, creds, options=_OPTIONS)
        if creds is not None
        else grpc.insecure_channel(target, options=_OPTIONS)
    ) as channel:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        answer: bytes = channel.unary_unary(WHOAMI)(b"", timeout=5)
        return answer.decode()


def _refused(port: int, creds: grpc.ChannelCredentials | None) -> None:
    with pytest.raises(grpc.RpcError) as info:
        _call(port, creds)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_valid_client_certificate_works_and_server_sees_the_oin(
    server: tuple[int, CertificateReloader, Path], pkis: tuple[Path, Path]
) -> None:
    port = server[0]
    creds = channel_credentials(PkiLayout(pkis[0]).party("svb").directory, PASSPHRASE, now=_now())
    assert _call(port, creds) == f"{SVB.oin} SVB"
    assert _call(port, creds, host="127.0.0.1") == f"{SVB.oin} SVB"  # IP SAN


def test_no_client_certificate_is_refused_in_the_handshake(
    server: tuple[int, CertificateReloader, Path], pkis: tuple[Path, Path]
) -> None:
    ca = PkiLayout(pkis[0]).ca_cert.read_bytes()
    _refused(server[0], grpc.ssl_channel_credentials(root_certificates=ca))


def test_certificate_from_another_ca_is_refused(
    server: tuple[int, CertificateReloader, Path], pkis: tuple[Path, Path]
) -> None:
    other = PkiLayout(pkis[1]).party("svb").directory
    ours_ca = PkiLayout(pkis[0]).ca_cert.read_bytes()
    from shared.pki import TlsMaterial

    m = TlsMaterial.load(other, PASSPHRASE, now=_now())
    # The client trusts our server, but presents a certificate of the other CA.
    creds = grpc.ssl_channel_credentials(ours_ca, m.private_key, m.certificate_chain)
    _refused(server[0], creds)


@pytest.mark.parametrize("shift_days", [-10, 10], ids=["expired", "not-yet-valid"])
def test_expired_or_not_yet_valid_client_certificate_is_refused(
    server: tuple[int, CertificateReloader, Path],
    pkis: tuple[Path, Path],
    tmp_path: Path,
    shift_days: int,
) -> None:
    """Issued by the trusted CA, but valid one day from ``now + shift``: BoringSSL refuses it
    against the wall clock; the library refuses it at an injected time with a distinct error."""
    from datetime import timedelta

    from shared.pki import (
        CertificateExpired,
        CertificateNotYetValid,
        PartySpec,
        Profile,
        TlsMaterial,
        issue_party,
        load_private_key,
        peer_identity,
    )
    from shared.pki.keystore import unsafe_private_pem

    root = tmp_path / "pki"
    shutil.copytree(pkis[0], root)
    issued_at = _now() + timedelta(days=shift_days)
    spec = PartySpec("stale", SVB, Profile.CLIENT, "svb-stale")
    issue_party(root, PASSPHRASE, spec, now=issued_at, days=1)
    files = PkiLayout(root).party("stale")
    key = load_private_key(files.key, PASSPHRASE)
    creds = grpc.ssl_channel_credentials(
        files.ca_bundle.read_bytes(), unsafe_private_pem(key), files.cert.read_bytes()
    )
    _refused(server[0], creds)
    error = CertificateExpired if shift_days < 0 else CertificateNotYetValid
    with pytest.raises(error):
        peer_identity(files.cert.read_bytes(), now=_now())
    with pytest.raises(error):
        TlsMaterial.load(files.directory, PASSPHRASE, now=_now())  # own material checked too


def test_plaintext_client_is_refused(server: tuple[int, CertificateReloader, Path]) -> None:
    _refused(server[0], None)


def test_client_refuses_a_server_of_another_ca(
    server: tuple[int, CertificateReloader, Path], pkis: tuple[Path, Path]
) -> None:
    _refused(
        server[0],
        channel_credentials(PkiLayout(pkis[1]).party("svb").directory, PASSPHRASE, now=_now()),
    )


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_versions_and_forward_secret_ciphers(
    server: tuple[int, CertificateReloader, Path], pkis: tuple[Path, Path]
) -> None:
    """Below TLS 1.2 is refused; 1.2 negotiates ECDHE; the default is TLS 1.3."""
    port = server[0]
    files = PkiLayout(pkis[0]).party("svb")

    def handshake(maximum: ssl.TLSVersion, ciphers: str = "") -> tuple[str | None, str]:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        # Let the client offer anything, so a refusal below is the server's.
        ctx.set_ciphers((ciphers or "ALL") + ":@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = maximum
        ctx.load_verify_locations(cadata=files.ca_bundle.read_text())
        ctx.load_cert_chain(files.cert, files.key, password=PASSPHRASE)
        ctx.set_alpn_protocols(["h2"])
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            cipher = tls.cipher()
            assert cipher is not None
            return tls.version(), cipher[0]

    assert handshake(ssl.TLSVersion.MAXIMUM_SUPPORTED)[0] == "TLSv1.3"
    version, cipher = handshake(ssl.TLSVersion.TLSv1_2)
    assert version == "TLSv1.2" and cipher.startswith("ECDHE-ECDSA-")
    for refused in (
        lambda: handshake(ssl.TLSVersion.TLSv1_1),
        # TLS 1.2 without ephemeral key exchange (static RSA): no forward secrecy, refused.
        lambda: handshake(ssl.TLSVersion.TLSv1_2, "AES128-GCM-SHA256:AES256-GCM-SHA384"),
    ):
        with pytest.raises((ssl.SSLError, OSError)):
            refused()


def test_reload_rotates_to_a_new_ca_for_new_connections(
    server: tuple[int, CertificateReloader, Path], pkis: tuple[Path, Path]
) -> None:
    port, reloader, served = server
    ours, other = (PkiLayout(p).party("svb").directory for p in pkis)
    assert _call(port, channel_credentials(ours, PASSPHRASE, now=_now())).startswith(SVB.oin)
    # Rotate the server's directory to the other CA's material and ask for a reload.
    for name in ("cert.pem", "key.pem", "ca.pem"):
        shutil.copyfile(PkiLayout(pkis[1]).party("server").directory / name, served / name)
    reloader.request_reload()
    assert _call(port, channel_credentials(other, PASSPHRASE, now=_now())).startswith(SVB.oin)
    assert reloader.reloads == 1 and reloader.last_error is None
    _refused(port, channel_credentials(ours, PASSPHRASE, now=_now()))


def test_a_failed_reload_keeps_the_current_material(
    server: tuple[int, CertificateReloader, Path], pkis: tuple[Path, Path]
) -> None:
    port, reloader, served = server
    (served / "key.pem").write_bytes(b"broken")
    reloader.request_reload()
    creds = channel_credentials(PkiLayout(pkis[0]).party("svb").directory, PASSPHRASE, now=_now())
    assert _call(port, creds).startswith(SVB.oin)
    assert reloader.reloads == 0
    assert reloader.last_error is not None and "key.pem" in str(reloader.last_error)
