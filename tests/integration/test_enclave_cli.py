"""The operator commands of the compute-to-data mode, wired as the lead wires them: keys,
registry, serve components, submit, list, approve, status, screen --mode enclave, revoke."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pytest

from shared.errors import Error
from shared.oracle import oracle_decisions
from svb_client import cli as svb_main
from svb_client import enclave_cli as svb_cli
from svb_client.households import read_households
from tests.unit.enclave.enclave_testkit import AIO_RULE, PERIOD, make_store
from uwv_server import enclave_cli as uwv_cli
from uwv_server.contexts import ContextRegistry
from uwv_server.grpc.server import build_server
from uwv_server.service import ScreeningService
from uwv_server.store import Snapshot


def _parser(add: object) -> argparse.ArgumentParser:
    """A CLI like uwv-server/svb-client: an existing ``rules`` group, then ``add_commands``."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    rules = sub.add_parser("rules").add_subparsers(dest="rules_command", required=True)
    rules.add_parser("verify").add_argument("file")
    add(sub)  # type: ignore[operator]
    return parser


def _run(parser: argparse.ArgumentParser, *argv: str) -> int:
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def test_operator_flow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIO_SIGNING_PASSPHRASE", "test passphrase")
    uwv = _parser(uwv_cli.add_commands)
    svb = _parser(svb_cli.add_commands)
    svb_client = svb_main.build_parser()  # screen --mode enclave is the one pipeline's
    registry = tmp_path / "registry.yaml"
    for name, org, role in (
        ("svb", "SVB", "author"),
        ("uwv", "UWV", "approver"),
        ("runner", "UWV", "runner"),
    ):
        key = str(tmp_path / f"{name}.key")
        assert _run(uwv, "keys", "signing-init", "--key", key, "--owner", name) == 0
        assert (
            _run(
                uwv,
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
            == 0
        )
    store, households = make_store(tmp_path, 80)
    state = tmp_path / "state"

    serve = argparse.ArgumentParser()
    uwv_cli.add_serve_arguments(serve)
    serve_args = serve.parse_args(
        [
            "--enclave-state",
            str(state),
            "--registry",
            str(registry),
            "--runner-key",
            str(tmp_path / "runner.key"),
            "--budget-limit",
            "3",
        ]
    )
    snapshot = Snapshot.open_current(store)
    parts = uwv_cli.serve_components(serve_args, store, snapshot)
    screening = ScreeningService(snapshot, ContextRegistry(store / "contexts"), budget=parts.budget)
    server, port = build_server(screening, 0, extra_services=parts.registrars)
    server.start()
    target = f"127.0.0.1:{port}"
    common = ["--state", str(state), "--registry", str(registry)]
    try:
        assert (
            _run(
                svb,
                "rules",
                "submit",
                str(AIO_RULE),
                "--unsafe-insecure",
                "--server",
                target,
                "--key",
                str(tmp_path / "svb.key"),
            )
            == 0
        )
        assert "VERDICT: ACCEPTED" in capsys.readouterr().out
        _run(uwv, "rules", "list", *common)
        listed = capsys.readouterr().out
        assert "pending" in listed
        digest = listed.split()[0]
        _run(uwv, "rules", "report", digest, *common)
        assert "What it decides" in capsys.readouterr().out
        screen = [
            "screen",
            "--mode",
            "enclave",
            "--quiet",
            "--unsafe-insecure",
            "--server",
            target,
            "--households",
            str(households),
            "--period",
            str(PERIOD),
            "--out",
            str(tmp_path / "out.csv"),
            "--rule",
            str(AIO_RULE),
            "--registry",
            str(registry),
        ]
        with pytest.raises(Error, match="pending"):
            _run(svb_client, *screen)
        assert (
            _run(uwv, "rules", "approve", digest, *common, "--key", str(tmp_path / "uwv.key")) == 0
        )
        _run(svb, "rules", "status", str(AIO_RULE), "--server", target, "--unsafe-insecure")
        assert "approved" in capsys.readouterr().out
        assert _run(svb_client, *screen) == 0
        with (tmp_path / "out.csv").open(newline="") as f:
            got = {r["household_id"]: r["decision"] == "eligible" for r in csv.DictReader(f)}
        batch = read_households(households)
        assert got == oracle_decisions(
            snapshot.directory / "records.parquet", batch.households, PERIOD
        )
        assert _run(uwv, "rules", "revoke", digest, *common, "--reason", "superseded") == 0
        with pytest.raises(Error, match="revoked"):
            _run(svb_client, *screen, "--fresh")  # the same command again only resumes
    finally:
        server.stop(grace=None)
        screening.contexts.close()
        parts.close()
