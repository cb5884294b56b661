"""Certificate rotation with a real SIGHUP (issue 10): the installed ``uwv-server serve --tls``
as a subprocess, a masked batch from the installed ``svb-client`` under way, the server's
certificate replaced in its TLS directory by ``uwv-server pki issue``, SIGHUP. The batch
goes on to the end on its connection with every decision as the plaintext oracle's, and a
new connection is served the new certificate (compared by serial number)."""

from __future__ import annotations

import csv
import signal
import socket
import sqlite3
import ssl
import subprocess
import time
from importlib.resources import files
from pathlib import Path

import pytest
from cryptography import x509

from shared.models import Period
from shared.oracle import oracle_decisions
from shared.pki import UWV
from svb_client.households import read_households
from tests.integration.cli_kit import PASSPHRASE, env, run, script, uwv_setup
from uwv_server.store import Snapshot
from uwv_server.synth import generate

pytestmark = pytest.mark.slow

PERIOD = Period.parse("2025-01..2025-12")
SHIPPED_RULE = Path(str(files("shared.rules.data") / "aio.yaml"))


def peer_serial(port: int, party: Path) -> int:
    """The serial number of the certificate the server presents on a new connection."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(party / "ca.pem")
    ctx.load_cert_chain(party / "cert.pem", party / "key.pem", password=PASSPHRASE)
    ctx.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("localhost", port), timeout=30) as sock,
        ctx.wrap_socket(sock, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def file_serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def chunks_done(journal: Path) -> int:
    if not journal.exists():
        return 0
    try:
        with sqlite3.connect(journal, timeout=0.1) as db:
            return int(db.execute("SELECT coalesce(sum(done), 0) FROM chunks").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_sighup_rotates_the_certificate_and_the_batch_in_flight_completes(
    tmp_path: Path,
) -> None:
    synth = generate(1600, PERIOD, tmp_path / "data", seed=11)
    uwv = uwv_setup(tmp_path / "uwv", synth.polis_path)
    uwv.serve("--unsafe-pinned-rule", str(SHIPPED_RULE), enclave=False)
    svb = tmp_path / "svb"
    svb.mkdir()
    (svb / "passphrase").write_text("svb key passphrase\n")
    server_cert = uwv.pki / "server" / "cert.pem"
    client = None
    try:
        old = file_serial(server_cert)
        assert peer_serial(uwv.port, uwv.pki / "svb") == old
        journal = svb / "journal.sqlite"
        client = subprocess.Popen(
            [script("svb-client"), "screen", "--server", uwv.target, *uwv.tls(),
             "--households", str(synth.households_path), "--period", str(PERIOD),
             "--out", "out.csv", "--journal", str(journal), "--key", "key.enc",
             "--passphrase-file", "passphrase", "--chunk-size", "4", "--in-flight", "1",
             "--quiet"],
            cwd=svb, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while chunks_done(journal) < 10:
            assert client.poll() is None, client.communicate()
            assert time.monotonic() < deadline, "the batch never got under way"
            time.sleep(0.05)

        # rotate: a new server certificate (and key) in the same directory, then SIGHUP
        run(uwv.work, "uwv-server", "pki", "issue", str(uwv.pki), "--name", "server",
            "--organisation", UWV.name, "--oin", UWV.oin, "--common-name", "localhost",
            "--server", "--force",
            "--passphrase-file", str(uwv.work / "tls-passphrase"))  # fmt: skip
        new = file_serial(server_cert)
        assert new != old
        assert client.poll() is None, "the batch ended before the rotation; make it longer"
        assert uwv.proc is not None
        uwv.proc.send_signal(signal.SIGHUP)
        # The handler runs asynchronously in the server's main thread and only sets a flag;
        # the next handshake after it reloads. Each try is a new connection.
        served = [peer_serial(uwv.port, uwv.pki / "svb")]
        deadline = time.monotonic() + 30
        while served[-1] != new and time.monotonic() < deadline:
            time.sleep(0.1)
            served.append(peer_serial(uwv.port, uwv.pki / "svb"))
        assert served[-1] == new, f"still the old certificate after SIGHUP ({len(served)} tries)"
        assert set(served) <= {old, new}
        in_flight = chunks_done(journal)
        assert client.poll() is None and in_flight < 400, "the batch was not in flight"

        _, stderr = client.communicate(timeout=600)
        assert client.returncode == 0, stderr
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            client.communicate()
        uwv.stop()
    log = uwv.log.read_text()
    assert "TLS material reloaded" in log, log
    # every household decided once, exactly as the oracle decides
    with (svb / "out.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    got = {r["household_id"]: r["decision"] == "eligible" for r in rows}
    assert len(got) == len(rows) == synth.households
    batch = read_households(synth.households_path)
    records = Snapshot.open_current(uwv.store).directory / "records.parquet"
    assert got == oracle_decisions(records, batch.households, PERIOD)
