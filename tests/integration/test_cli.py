"""The console scripts as an operator runs them: clear errors, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import AIO_RULE, HOUSEHOLD_COLUMNS, POLIS_COLUMNS, bsn_from, write_csv


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True)


def test_rules_commands() -> None:
    check = _run("svb_client.cli", "rules", "check", str(AIO_RULE))
    assert check.returncode == 0 and "test cases passed" in check.stdout
    digest = _run("svb_client.cli", "rules", "digest", str(AIO_RULE))
    assert digest.returncode == 0 and len(digest.stdout.split()[0]) == 64
    verify = _run("uwv_server.cli", "rules", "verify", str(AIO_RULE))
    assert verify.returncode == 0 and "ACCEPTED" in verify.stdout


def test_load_refusal_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    polis = write_csv(
        tmp_path / "p.csv", POLIS_COLUMNS, [["999999999", 1, "wage", "2025-01", 1, 0]]
    )
    result = _run("uwv_server.cli", "load", "--polis", str(polis), "--store", str(tmp_path / "s"))
    assert result.returncode == 2
    assert "line 2: bsn '999999999' fails the elfproef" in result.stderr
    assert "Traceback" not in result.stderr


def test_screen_errors_are_messages(tmp_path: Path) -> None:
    hh = write_csv(tmp_path / "hh.csv", HOUSEHOLD_COLUMNS, [["h", bsn_from(1), "single", 0]])
    (tmp_path / "pass").write_text("a passphrase")
    base = [
        "svb_client.cli",
        "screen",
        "--unsafe-insecure",
        "--households",
        str(hh),
        "--out",
        str(tmp_path / "o.csv"),
        "--key",
        str(tmp_path / "k"),
        "--passphrase-file",
        str(tmp_path / "pass"),
        "--rule",
        str(AIO_RULE),
    ]
    bad_period = _run(*base, "--period", "2025-13..2025-12")
    assert bad_period.returncode == 2 and "month 13" in bad_period.stderr
    no_server = _run(
        *base, "--period", "2025-01..2025-12", "--server", "127.0.0.1:1", "--connect-timeout", "1"
    )
    assert no_server.returncode == 2
    for result in (bad_period, no_server):
        assert "Traceback" not in result.stderr
