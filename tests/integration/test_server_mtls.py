"""The server over real mutual TLS on localhost (issue 10, server side): who is refused in the
handshake, who may call what, requester bound to the certificate, audit entries naming the
authenticated OIN, and certificate rotation that keeps a batch in flight."""

from __future__ import annotations

import queue
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared._proto.eligibility.v2 import audit_pb2 as apb
from shared._proto.eligibility.v2 import audit_pb2_grpc as apb_grpc
from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared._proto.eligibility.v2 import eligibility_pb2_grpc as pb_grpc
from shared.crypto.registry import AccessRole, OrganisationEntry, Registry
from shared.digests import sha256_hex
from shared.he.backend import SecretMaskedContext
from shared.models import Period
from shared.pki import (
    ADR,
    SVB,
    UWV,
    PartySpec,
    PkiLayout,
    Profile,
    channel_credentials,
    init_dev_pki,
    issue_party,
    reloading_server_credentials,
)
from tests.conftest import bsn_from
from tests.integration.test_screen_grpc import RULE_DIGEST
from uwv_server.grpc.auth import Authoriser
from uwv_server.grpc.server import TlsConfig
from uwv_server.store import import_polis
from uwv_server.synth import generate

PASSPHRASE = b"mtls-server-test-passphrase"
PERIOD = Period.parse("2025-01..2025-12")


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("pki")
    ours, other = base / "ours", base / "other"
    init_dev_pki(ours, PASSPHRASE, now=_now(), days=2)
    init_dev_pki(other, PASSPHRASE, now=_now(), days=2)
    issue_party(
        ours,
        PASSPHRASE,
        PartySpec("svb-expired", SVB, Profile.CLIENT, "svb-client"),
        now=_now() - timedelta(days=10),
        days=2,
    )
    layout, foreign = PkiLayout(ours), PkiLayout(other)
    return {
        "root": ours,
        "server": layout.party("server").directory,
        "svb": layout.party("svb").directory,
        "auditor": layout.party("auditor").directory,
        "expired": layout.party("svb-expired").directory,
        "foreign-svb": foreign.party("svb").directory,
    }


REGISTRY = Registry(
    keys=(),
    organisations=(
        OrganisationEntry(name="SVB", oin=SVB.oin, roles=frozenset({AccessRole.SCREENER})),
        OrganisationEntry(name="ADR", oin=ADR.oin, roles=frozenset({AccessRole.AUDITOR})),
    ),
)


@pytest.fixture
def tls_server(
    pki: dict[str, Path], tmp_path: Path, start_server: Any, secret_context: SecretMaskedContext
) -> Any:
    synth = generate(50, PERIOD, tmp_path / "data", seed=2)
    import_polis(synth.polis_path, tmp_path / "store")
    served = tmp_path / "server-tls"
    shutil.copytree(pki["server"], served)
    credentials, reloader = reloading_server_credentials(served, PASSPHRASE, clock=_now)
    tls = TlsConfig(credentials, Authoriser(REGISTRY, clock=_now))
    server = start_server(tmp_path / "store", tls=tls)
    server.reloader = reloader
    server.served = served
    return server


@pytest.fixture
def secure(tls_server: Any, pki: dict[str, Path]) -> Iterator[Any]:
    channels: list[grpc.Channel] = []

    def _open(party: str, now: datetime | None = None) -> grpc.Channel:
        creds = channel_credentials(pki[party], PASSPHRASE, now=now or _now())
        channel = grpc.secure_channel(tls_server.target, creds)
        channels.append(channel)
        return channel

    yield _open
    for channel in channels:
        channel.close()


def _header(digest: str, requester: str = "") -> pb.ScreenRequest:
    return pb.ScreenRequest(
        header=pb.BatchHeader(
            batch_id="mtls",
            context_sha256=digest,
            mode=pb.MODE_MASKED,
            period=str(PERIOD),
            rule_digest=RULE_DIGEST,
            requester=requester,
        )
    )


def _chunk(index: int, secret: SecretMaskedContext) -> pb.ScreenRequest:
    ct = secret.encrypt(np.zeros(1, dtype=np.int64))
    return pb.ScreenRequest(
        chunk=pb.Chunk(
            index=index, member_counts=[1], member_bsns=[int(bsn_from(index))], ciphertexts=[ct]
        )
    )


def _upload(channel: grpc.Channel, secret: SecretMaskedContext) -> str:
    public = secret.public_bytes()
    pb_grpc.ScreeningServiceStub(channel).UploadContext(
        pb.UploadContextRequest(parameter_set=secret.params.name, context=public), timeout=30
    )
    return sha256_hex(public)


def _refused_in_handshake(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as info:
        pb_grpc.ScreeningServiceStub(channel).GetServerInfo(pb.GetServerInfoRequest(), timeout=5)
    assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED)  # type: ignore[attr-defined]


def test_svb_screens_and_the_audit_entry_names_its_oin(
    secure: Any, secret_context: SecretMaskedContext
) -> None:
    svb = secure("svb")
    digest = _upload(svb, secret_context)
    stub = pb_grpc.ScreeningServiceStub(svb)
    responses = list(
        stub.Screen(iter([_header(digest, requester=SVB.oin), _chunk(0, secret_context)]))
    )
    assert not responses[0].result.HasField("error")
    health = health_pb2_grpc.HealthStub(svb).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    # the auditor reads the log: the entry names the authenticated organisation, not a claim
    log = apb_grpc.AuditLogServiceStub(secure("auditor"))
    size = int(log.GetCheckpoint(apb.GetCheckpointRequest()).note.split("\n")[1])
    leaves = log.GetEntries(apb.GetEntriesRequest(start=0, end=size)).leaves
    assert any(f"SVB (OIN {SVB.oin})".encode() in leaf for leaf in leaves)


def test_a_caught_strict_key_cheat_is_logged_under_svbs_oin(
    secure: Any, strict_family_small: Any
) -> None:
    """Issue 14: the key check's cheat entry names the certificate's organisation and OIN."""
    stub = pb_grpc.ScreeningServiceStub(secure("svb"))
    name = strict_family_small.params.name
    contexts = strict_family_small.public_contexts(2)  # the test server: K=2, challenge 0
    reply = stub.ProposeKeySets(
        iter([pb.ProposeKeySetsRequest(parameter_set=name, context=c) for c in contexts])
    )
    seeds = strict_family_small.openings(2, reply.chosen_index)
    seeds[1 - reply.chosen_index] = bytes(32)  # not the seed the set was made from
    with pytest.raises(grpc.RpcError) as info:
        stub.OpenKeySets(pb.OpenKeySetsRequest(proposal_id=reply.proposal_id, seeds=seeds))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    log = apb_grpc.AuditLogServiceStub(secure("auditor"))
    size = int(log.GetCheckpoint(apb.GetCheckpointRequest()).note.split("\n")[1])
    leaves = log.GetEntries(apb.GetEntriesRequest(start=0, end=size)).leaves
    cheats = [leaf for leaf in leaves if b'"key_check":"cheat-detected"' in leaf]
    assert len(cheats) == 1 and f"SVB (OIN {SVB.oin})".encode() in cheats[0]


def test_no_certificate_other_ca_expired_and_plaintext_are_refused(
    tls_server: Any, pki: dict[str, Path], secure: Any
) -> None:
    ca = (pki["root"] / "ca" / "ca.pem").read_bytes()
    no_cert = grpc.secure_channel(tls_server.target, grpc.ssl_channel_credentials(ca))
    plaintext = grpc.insecure_channel(tls_server.target)
    try:
        _refused_in_handshake(no_cert)
        _refused_in_handshake(plaintext)
    finally:
        no_cert.close()
        plaintext.close()
    # a certificate from another CA (the client trusts our server: only its own cert is foreign)
    key_and_chain = grpc.ssl_channel_credentials(
        ca,
        private_key=_key_pem(pki["foreign-svb"]),
        certificate_chain=(pki["foreign-svb"] / "cert.pem").read_bytes(),
    )
    other = grpc.secure_channel(tls_server.target, key_and_chain)
    expired = secure("expired", now=_now() - timedelta(days=9))
    try:
        _refused_in_handshake(other)
        _refused_in_handshake(expired)
    finally:
        other.close()
    # and the server still serves the rightful caller
    info = pb_grpc.ScreeningServiceStub(secure("svb")).GetServerInfo(pb.GetServerInfoRequest())
    assert info.server_version


def _key_pem(directory: Path) -> bytes:
    from shared.pki import TlsMaterial

    return TlsMaterial.load(directory, PASSPHRASE, now=_now()).private_key


def test_roles_decide_who_may_call_what(secure: Any, secret_context: SecretMaskedContext) -> None:
    auditor = secure("auditor")
    with pytest.raises(grpc.RpcError) as info:
        pb_grpc.ScreeningServiceStub(auditor).GetServerInfo(pb.GetServerInfoRequest(), timeout=5)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert "needs the role screener" in info.value.details()  # type: ignore[attr-defined]
    assert f"ADR (OIN {ADR.oin})" in info.value.details()  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as info:
        apb_grpc.AuditLogServiceStub(secure("svb")).GetCheckpoint(
            apb.GetCheckpointRequest(), timeout=5
        )
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert "needs the role auditor or operator" in info.value.details()  # type: ignore[attr-defined]
    # health is open to any authenticated organisation
    health = health_pb2_grpc.HealthStub(auditor).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("claimed", ["ADR", ADR.oin, "UWV", f"SVB (OIN {UWV.oin})"])
def test_svb_cannot_claim_another_requester(
    secure: Any, secret_context: SecretMaskedContext, claimed: str
) -> None:
    svb = secure("svb")
    digest = _upload(svb, secret_context)
    with pytest.raises(grpc.RpcError) as info:
        list(pb_grpc.ScreeningServiceStub(svb).Screen(iter([_header(digest, requester=claimed)])))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert "is not the authenticated caller SVB" in info.value.details()  # type: ignore[attr-defined]


def test_certificate_rotation_keeps_a_batch_in_flight(
    tls_server: Any, pki: dict[str, Path], secure: Any, secret_context: SecretMaskedContext
) -> None:
    svb = secure("svb")
    digest = _upload(svb, secret_context)
    sent: queue.Queue[pb.ScreenRequest | None] = queue.Queue()

    def requests() -> Iterator[pb.ScreenRequest]:
        while (message := sent.get(timeout=60)) is not None:
            yield message

    stream = pb_grpc.ScreeningServiceStub(svb).Screen(requests(), timeout=120)
    sent.put(_header(digest))
    sent.put(_chunk(0, secret_context))
    assert next(stream).result.index == 0
    # rotate: a new server certificate in the served directory, then what SIGHUP does
    issue_party(
        pki["root"],
        PASSPHRASE,
        PartySpec("server", UWV, Profile.SERVER, "localhost"),
        now=_now(),
        days=2,
        force=True,
    )
    for name in ("cert.pem", "key.pem", "ca.pem"):
        shutil.copy(pki["server"] / name, tls_server.served / name)
    tls_server.reloader.request_reload()
    fresh = secure("svb")  # a new connection: its handshake picks up the new certificate
    assert pb_grpc.ScreeningServiceStub(fresh).GetServerInfo(pb.GetServerInfoRequest(), timeout=10)
    assert tls_server.reloader.reloads == 1 and tls_server.reloader.last_error is None
    # the batch that was in flight goes on over its established connection
    sent.put(_chunk(1, secret_context))
    assert next(stream).result.index == 1
    sent.put(None)
    rest = list(stream)
    assert rest[-1].summary.chunks == 2


def test_serve_needs_tls_or_an_explicitly_unsafe_loopback(tmp_path: Path) -> None:
    from uwv_server.cli import main

    store = tmp_path / "store"
    with pytest.raises(SystemExit, match="give --tls DIR"):
        main(["serve", "--store", str(store)])
    with pytest.raises(SystemExit, match="only allowed on a loopback address"):
        main(["serve", "--store", str(store), "--unsafe-insecure", "--host", "0.0.0.0"])
    with pytest.raises(SystemExit, match="--tls needs --registry"):
        main(["serve", "--store", str(store), "--tls", str(tmp_path)])
