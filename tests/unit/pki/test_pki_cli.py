"""``uwv-server pki init`` / ``pki issue``: messages, exit codes, refusal to overwrite."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from pki_testkit import PASSPHRASE

from shared.crypto import AccessRole, Registry
from shared.pki import PkiLayout, load_certificate, peer_identity
from uwv_server.cli import main


def test_init_and_issue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pw = tmp_path / "pw"
    pw.write_bytes(PASSPHRASE + b"\n")
    root = tmp_path / "pki"
    assert main(["pki", "init", str(root), "--passphrase-file", str(pw), "--days", "7"]) == 0
    out = capsys.readouterr().out
    assert "svb" in out and "OIN 00000099000000000020" in out
    # The printed registry section parses, and gives each development organisation its role.
    section = yaml.safe_load(out[out.index("\norganisations:") :])
    registry = Registry.parse({"keys": [], **section})
    svb = peer_identity(PkiLayout(root).party("svb").cert.read_bytes(), now=datetime.now(UTC))
    assert registry.roles_for(svb) == {AccessRole.SCREENER}
    assert main(["pki", "init", str(root), "--passphrase-file", str(pw)]) == 2
    assert "exists already; give --force" in capsys.readouterr().err
    monkeypatch.setenv("AIO_PKI_PASSPHRASE", PASSPHRASE.decode())
    args = ["pki", "issue", str(root), "--name", "gem", "--organisation", "Gemeente X"]
    assert main([*args, "--oin", "12"]) == 2
    assert "exactly 20 digits" in capsys.readouterr().err
    assert main([*args, "--oin", "00000099000000000099"]) == 0
    cert = load_certificate(PkiLayout(root).party("gem").cert.read_bytes())
    assert "Gemeente X" in cert.subject.rfc4514_string()
    server = ["pki", "issue", str(root), "--name", "edge", "--organisation", "UWV"]
    server += [
        "--oin",
        "00000099000000000010",
        "--server",
        "--dns",
        "uwv.example",
        "--ip",
        "10.0.0.5",
    ]
    assert main(server) == 0
    cert = load_certificate(PkiLayout(root).party("edge").cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["uwv.example"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    assert main([*args, "--oin", "00000099000000000097", "--dns", "x"]) == 2
    assert "add --server" in capsys.readouterr().err
    monkeypatch.setenv("AIO_PKI_PASSPHRASE", "wrong passphrase")
    assert main([*args, "--oin", "00000099000000000098", "--force"]) == 2
    assert "wrong passphrase" in capsys.readouterr().err


def test_init_without_a_passphrase_says_how_to_give_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIO_PKI_PASSPHRASE", raising=False)
    assert main(["pki", "init", str(tmp_path / "pki")]) == 2
    assert "give --passphrase-file or set AIO_PKI_PASSPHRASE" in capsys.readouterr().err
    assert not (tmp_path / "pki").exists()
