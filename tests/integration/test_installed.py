"""The package as a user installs it: the wheel carries the rule and the norms, and the
console script works from an empty directory, refusing a period without a published norm
before it creates a key, a journal or an output file."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import HOUSEHOLD_COLUMNS, ROOT, bsn_from, write_csv

DATA_FILES = (
    "shared/rules/data/aio.yaml",
    "shared/rules/data/regelrecht/participatiewet_aio.yaml",
    "shared/rules/data/regelrecht/participatiewet_aio.binding.yaml",
    "shared/data/aio_norms.json",
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, installed (without dependencies) into a fresh target directory."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    wheel = next(out.glob("aio_screening-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in DATA_FILES if f not in names]
    assert not missing, f"the wheel lacks {missing}"
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return target


def run_installed(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``svb-client ARGS`` from ``cwd``, importing the project only from the installed wheel."""
    boot = (
        "import sys; sys.path.insert(0, sys.argv.pop(1)); import svb_client.cli as cli; "
        "assert cli.__file__.startswith(sys.path[0]), cli.__file__; sys.exit(cli.main())"
    )
    return subprocess.run(
        [sys.executable, "-c", boot, str(target), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def test_rules_check_of_the_shipped_rule_from_an_empty_directory(
    installed: Path, tmp_path: Path
) -> None:
    rule = installed / "shared" / "rules" / "data" / "aio.yaml"
    result = run_installed(installed, tmp_path, "rules", "check", str(rule))
    assert result.returncode == 0, result.stderr
    assert "test cases passed" in result.stdout


@pytest.mark.parametrize("mode", ["masked", "strict", "enclave"])
def test_screen_in_2027_is_refused_before_anything_is_created(
    installed: Path, tmp_path: Path, mode: str
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    hh = write_csv(inputs / "hh.csv", HOUSEHOLD_COLUMNS, [["h1", bsn_from(1), "single", 0]])
    (inputs / "pass").write_text("a passphrase")
    work = tmp_path / "work"
    work.mkdir()
    result = run_installed(
        installed, work, "screen", "--mode", mode, "--households", str(hh),
        "--period", "2027-01..2027-06", "--out", "out.csv",
        "--passphrase-file", str(inputs / "pass"), "--registry", str(inputs / "registry.json"),
        "--server", "127.0.0.1:1", "--connect-timeout", "1",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "period 2027-01..2027-06" in result.stderr
    assert "from 2026-07-01" in result.stderr and "until 2026-12-31" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(work.iterdir()) == []  # no key, no journal, no outreach file
