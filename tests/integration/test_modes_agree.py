"""All three modes through the real console scripts: one `uwv-server serve` process, SVB's
`svb-client screen` in masked, strict and enclave mode, identical decisions, every run in
UWV's audit log, and the auditor's offline check of that log."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.audit import RunMode, load_export, verify_export
from shared.audit.fetch import fetch_export
from shared.audit.note import parse_vkey
from shared.client_channel import ChannelSecurity
from tests.conftest import AIO_RULE, ROOT
from uwv_server.store import import_polis
from uwv_server.synth import generate

PERIOD = "2025-01..2025-12"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "AIO_SIGNING_PASSPHRASE": "test passphrase"}


def _cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, env=ENV, cwd=ROOT
    )
    assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    return result.stdout


def _decisions(path: Path) -> dict[str, str]:
    with path.open(newline="") as f:
        return {r["household_id"]: r["decision"] for r in csv.DictReader(f)}


@pytest.fixture
def uwv(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    registry = tmp_path / "registry.yaml"
    for name, org, role in (
        ("svb", "SVB", "author"),
        ("uwv", "UWV", "approver"),
        ("runner", "UWV", "runner"),
    ):
        key = str(tmp_path / f"{name}.key")
        _cli("uwv_server.cli", "keys", "signing-init", "--key", key, "--owner", name)
        _cli(
            "uwv_server.cli",
            "keys",
            "registry-add",
            "--registry",
            str(registry),
            "--key",
            key,
            "--name",
            name,
            "--organisation",
            org,
            "--role",
            role,
        )
    synth = generate(
        1500, __import__("shared.models").models.Period.parse(PERIOD), tmp_path / "data", seed=31
    )
    store = tmp_path / "store"
    import_polis(synth.polis_path, store)
    port_file = tmp_path / "port"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uwv_server.cli",
            "serve",
            "--store",
            str(store),
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--unsafe-insecure",
            "--enclave-state",
            str(tmp_path / "state"),
            "--registry",
            str(registry),
            "--runner-key",
            str(tmp_path / "runner.key"),
            "--strict-key-sets",  # the client's key check: 2 sets keep the test quick
            "2",
        ],
        env=ENV,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not port_file.exists() and time.monotonic() < deadline and server.poll() is None:
        time.sleep(0.05)
    assert port_file.exists(), server.stderr.read() if server.stderr else "no server"
    try:
        yield f"127.0.0.1:{port_file.read_text().strip()}", synth.households_path, registry
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_masked_strict_and_enclave_agree_and_are_audited(
    uwv: tuple[str, Path, Path], tmp_path: Path
) -> None:
    target, households, registry = uwv
    (tmp_path / "pass").write_text("svb passphrase")
    base = [
        "svb_client.cli",
        "screen",
        "--unsafe-insecure",
        "--server",
        target,
        "--households",
        str(households),
        "--period",
        PERIOD,
        "--rule",
        str(AIO_RULE),
        "--quiet",
    ]
    keyed = ["--passphrase-file", str(tmp_path / "pass")]
    # SVB submits the signed rule, UWV's operator approves it: from then on UWV computes it
    # in every mode (the HE modes take the income definition from the approved rule too)
    _cli(
        "svb_client.cli",
        "rules",
        "submit",
        str(AIO_RULE),
        "--unsafe-insecure",
        "--server",
        target,
        "--key",
        str(tmp_path / "svb.key"),
    )
    state = ["--state", str(tmp_path / "state"), "--registry", str(registry)]
    digest = _cli("uwv_server.cli", "rules", "list", *state).split()[0]
    _cli("uwv_server.cli", "rules", "approve", digest, *state, "--key", str(tmp_path / "uwv.key"))

    _cli(
        *base,
        "--mode",
        "masked",
        "--out",
        str(tmp_path / "masked.csv"),
        "--key",
        str(tmp_path / "m.key"),
        *keyed,
    )
    _cli(
        *base,
        "--mode",
        "strict",
        "--parameter-set",
        "bfv-strict-n8192",
        "--out",
        str(tmp_path / "strict.csv"),
        "--key",
        str(tmp_path / "s.key"),
        *keyed,
    )
    _cli(
        *base,
        "--mode",
        "enclave",
        "--out",
        str(tmp_path / "enclave.csv"),
        "--registry",
        str(registry),
    )

    masked = _decisions(tmp_path / "masked.csv")
    assert len(masked) == 1500 and set(masked.values()) <= {"eligible", "not_eligible"}
    assert _decisions(tmp_path / "strict.csv") == masked
    assert _decisions(tmp_path / "enclave.csv") == masked

    export = tmp_path / "export.jsonl"
    # masked run, strict key check (issue 14: accepted), strict run, enclave run
    assert fetch_export(target, export, security=ChannelSecurity.unsafe_plaintext()) == 4
    log_key = (tmp_path / "state").parent / "store" / "keys" / "log.skey"
    from shared.audit.note import parse_skey

    verifier = parse_skey(log_key.read_text()).verifier
    verified = verify_export(load_export(export), parse_vkey(verifier.vkey()))
    modes = [(e.mode, e.key_check) for e in verified.entries]
    assert modes == [
        (RunMode.HE_MASKED, None),
        (RunMode.HE_STRICT, "accepted"),
        (RunMode.HE_STRICT, None),
        (RunMode.COMPUTE_TO_DATA, None),
    ]
    enclave_entry = verified.entries[3]
    assert enclave_entry.rule_digest == digest
    assert enclave_entry.snapshot_digest and enclave_entry.statement_digest
    assert len(enclave_entry.approvals) == 1

    # the auditor replays the compute-to-data run: same rule, snapshot, batch and output
    packages = sorted((tmp_path / "enclave.csv.replay").glob("*.npz"))
    assert len(packages) == 1
    replay = [
        "uwv_server.cli",
        "audit",
        "replay",
        "--store",
        str(tmp_path / "store"),
        "--export",
        str(export),
        "--log-key",
        verifier.vkey(),
        "--run-id",
        enclave_entry.run_id,
        "--package",
        str(packages[0]),
        "--rule",
        str(AIO_RULE),
    ]
    out = _cli(*replay)
    assert "VERDICT: the run replays" in out and "FAIL" not in out

    # a package whose outcomes were altered does not replay, and says where
    import numpy as np

    with np.load(packages[0]) as z:
        data = {k: z[k] for k in z.files}
    data["outcomes"] = data["outcomes"].copy()
    data["outcomes"][3] ^= 1
    bad = tmp_path / "altered.npz"
    np.savez(bad, **data)
    result = subprocess.run(
        [sys.executable, "-m", *replay[:-4], "--package", str(bad), "--rule", str(AIO_RULE)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "FAIL output" in result.stdout and "at positions 3" in result.stdout

    # a replay on other data is refused: the logged snapshot is no longer in the store
    for snap in (tmp_path / "store" / "snapshots").iterdir():
        (snap / "monthly.parquet").write_bytes(b"not the data that ran")
        (snap / "records.parquet").write_bytes(b"not the data that ran")
    result = subprocess.run(
        [sys.executable, "-m", *replay], capture_output=True, text=True, env=ENV, cwd=ROOT
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
