"""The client over real mutual TLS on localhost: svb-client screen and aio-audit fetch.

The server here is a minimal mTLS server built with shared.pki's credentials around UWV's
real services (the server layer's own mTLS, roles and requester checks are tested there).
Checked on the client side: a batch runs over mutual TLS; without TLS material the client
refuses before connecting; plaintext is refused to a non-loopback address; a client from
another CA, and a plaintext client, do not get through; the auditor fetches over mTLS.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.audit.fetch import fetch_export
from shared.client_channel import ChannelError, ChannelSecurity, is_loopback
from shared.crypto.registry import AccessRole, OrganisationEntry, Registry
from shared.he.backend import SecretMaskedContext
from shared.models import Period
from shared.pki import ADR, SVB, PkiLayout, init_dev_pki, server_credentials
from svb_client.pipeline import ScreenJob, run_screen
from svb_client.wire import GrpcTransport, ServerError
from tests.conftest import AIO_RULE
from uwv_server.audit_trail import AuditTrail
from uwv_server.budget import SqliteBudget
from uwv_server.contexts import ContextRegistry
from uwv_server.grpc.audit import audit_registrar
from uwv_server.grpc.auth import Authoriser
from uwv_server.grpc.server import TlsConfig, build_server
from uwv_server.he_rules import PinnedRules
from uwv_server.service import ScreeningService
from uwv_server.store import Snapshot, import_polis
from uwv_server.synth import generate

PASSPHRASE = b"client mtls passphrase"
PERIOD = Period.parse("2025-01..2025-06")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Uwv:
    target: str
    pki: Path
    other_pki: Path
    households: Path
    store: Path


@pytest.fixture(scope="module")
def uwv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uwv]:
    base = tmp_path_factory.mktemp("client-mtls")
    init_dev_pki(base / "pki", PASSPHRASE, now=_now(), days=30)
    init_dev_pki(base / "other", PASSPHRASE, now=_now(), days=30)
    synth = generate(120, PERIOD, base / "data", seed=3)
    import_polis(synth.polis_path, base / "store")
    budget = SqliteBudget(base / "store" / "budget.sqlite")
    trail = AuditTrail.open(base / "store", ledger=budget)
    service = ScreeningService(
        Snapshot.open_current(base / "store"),
        ContextRegistry(base / "contexts"),
        budget=budget,
        audit=trail,
        rules=PinnedRules.from_files([AIO_RULE]),  # UWV computes the default rule only
    )
    creds = server_credentials(
        PkiLayout(base / "pki").party("server").directory, PASSPHRASE, now=_now()
    )
    roles = Registry(
        keys=(),
        organisations=tuple(
            OrganisationEntry(name=name, oin=oin, roles=r)
            for name, oin, r in (
                ("SVB", SVB.oin, frozenset({AccessRole.SCREENER})),
                ("ADR", ADR.oin, frozenset({AccessRole.AUDITOR})),
            )
        ),
    )
    server, port = build_server(
        service,
        0,
        extra_services=[audit_registrar(trail)],
        tls=TlsConfig(creds, Authoriser(roles, clock=_now)),
    )
    server.start()
    yield Uwv(
        f"localhost:{port}", base / "pki", base / "other", synth.households_path, base / "store"
    )
    server.stop(grace=None)
    service.contexts.close()
    trail.close()
    budget.close()


def _party(pki: Path, name: str) -> Path:
    return PkiLayout(pki).party(name).directory


def _job(
    uwv: Uwv, tmp_path: Path, secret: SecretMaskedContext, security: ChannelSecurity
) -> ScreenJob:
    return ScreenJob(
        households=uwv.households,
        period=PERIOD,
        out=tmp_path / "out.csv",
        journal=tmp_path / "journal.sqlite",
        secret=secret,
        server=uwv.target,
        rule=AIO_RULE,
        progress=False,
        connect_timeout_s=5.0,
        security=security,
    )


def test_a_batch_runs_over_mutual_tls(
    uwv: Uwv, tmp_path: Path, secret_context: SecretMaskedContext
) -> None:
    security = ChannelSecurity.mutual_tls(_party(uwv.pki, "svb"), PASSPHRASE, clock=_now)
    summary = run_screen(_job(uwv, tmp_path, secret_context, security))
    with (tmp_path / "out.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert summary.screened == len([r for r in rows if r["decision"] != "rejected"]) > 0


def test_without_tls_material_the_client_refuses_before_connecting(
    uwv: Uwv, tmp_path: Path, secret_context: SecretMaskedContext
) -> None:
    with pytest.raises(ChannelError, match="mutual TLS: give --tls-dir"):
        run_screen(_job(uwv, tmp_path, secret_context, ChannelSecurity()))


def test_plaintext_is_only_for_loopback() -> None:
    assert is_loopback("127.0.0.1:50051") and is_loopback("localhost:1") and is_loopback("[::1]:9")
    assert not is_loopback("uwv.example.nl:443") and not is_loopback("10.0.0.1:50051")
    with pytest.raises(ChannelError, match="only for a loopback address"):
        GrpcTransport.unsafe_insecure("uwv.example.nl:50051")


def test_a_plaintext_client_or_one_from_another_ca_gets_nowhere(
    uwv: Uwv, tmp_path: Path, secret_context: SecretMaskedContext
) -> None:
    for security in (
        ChannelSecurity.unsafe_plaintext(),
        ChannelSecurity.mutual_tls(_party(uwv.other_pki, "svb"), PASSPHRASE, clock=_now),
    ):
        with pytest.raises(ServerError, match="unreachable within"):
            run_screen(_job(uwv, tmp_path, secret_context, security))


def test_the_auditor_fetches_the_log_over_mutual_tls(
    uwv: Uwv, tmp_path: Path, secret_context: SecretMaskedContext
) -> None:
    security = ChannelSecurity.mutual_tls(_party(uwv.pki, "svb"), PASSPHRASE, clock=_now)
    run_screen(_job(uwv, tmp_path, secret_context, security))
    auditor = _party(uwv.pki, "auditor")
    (tmp_path / "pass").write_bytes(PASSPHRASE + b"\n")
    fetched = subprocess.run(
        [
            sys.executable,
            "-m",
            "shared.audit.cli",
            "fetch",
            "--server",
            uwv.target,
            "--out",
            str(tmp_path / "export.jsonl"),
            "--tls-dir",
            str(auditor),
            "--tls-passphrase-file",
            str(tmp_path / "pass"),
        ],
        capture_output=True,
        text=True,
    )
    assert fetched.returncode == 0, fetched.stderr
    assert "fetched" in fetched.stdout
    size = fetch_export(
        uwv.target,
        tmp_path / "again.jsonl",
        security=ChannelSecurity.mutual_tls(auditor, PASSPHRASE, clock=_now),
    )
    assert size >= 1
    plain = subprocess.run(
        [sys.executable, "-m", "shared.audit.cli", "fetch", "--server", uwv.target, "--out", "x"],
        capture_output=True,
        text=True,
    )
    assert plain.returncode != 0 and "--tls-dir" in plain.stderr
    assert "Traceback" not in plain.stderr
    shutil.rmtree(tmp_path, ignore_errors=True)
