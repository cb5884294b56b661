"""The installed console scripts (``uwv-server``, ``svb-client``, ``aio-audit`` from the venv's
bin directory) as an operator runs them: from a working directory outside the checkout, with
a development PKI, signing keys, one key registry and ``uwv-server serve`` over mutual TLS as
a subprocess on a free localhost port. Used by the CLI tests (SIGHUP rotation, the 2026 law)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from shared.pki import SVB, UWV

BIN: Final = Path(sys.executable).parent
PASSPHRASE: Final = "cli-test-passphrase"
ROOT: Final = Path(__file__).resolve().parents[2]


def script(name: str) -> str:
    """The installed console script ``name`` (never ``python -m`` from the checkout)."""
    path = BIN / name
    assert path.exists(), f"{path} is not installed (run scripts/setup.sh)"
    return str(path)


def env() -> dict[str, str]:
    """The environment of every command: no PYTHONPATH pointing into the checkout."""
    out = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out["AIO_SIGNING_PASSPHRASE"] = PASSPHRASE
    out["AIO_PKI_PASSPHRASE"] = PASSPHRASE
    return out


def run(cwd: Path, name: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run an installed console script from ``cwd``; with ``ok`` it must exit 0."""
    result = subprocess.run(
        [script(name), *args], cwd=cwd, capture_output=True, text=True, env=env(), timeout=900
    )
    if ok:
        assert result.returncode == 0, f"{name} {' '.join(args)}:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result


@dataclass
class Uwv:
    """UWV's side: store, PKI, registry, keys; and the serving process once started."""

    work: Path
    store: Path
    proc: subprocess.Popen[str] | None = None
    port: int = 0
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.work / "server.log"

    @property
    def pki(self) -> Path:
        return self.work / "pki"

    @property
    def registry(self) -> Path:
        return self.work / "registry.yaml"

    @property
    def target(self) -> str:
        return f"localhost:{self.port}"

    def tls(self, party: str = "svb") -> list[str]:
        """The client options for mutual TLS as ``party``."""
        return [
            "--tls-dir",
            str(self.pki / party),
            "--tls-passphrase-file",
            str(self.work / "tls-passphrase"),
        ]

    def serve(self, *extra: str, enclave: bool = True) -> None:
        """``uwv-server serve`` over mutual TLS; ``enclave``: with the rule register and the
        compute-to-data service (else ``extra`` must say which rule HE modes compute)."""
        port_file = self.work / "port"
        port_file.unlink(missing_ok=True)
        state = ["--enclave-state", str(self.work / "state"),
                 "--runner-key", str(self.work / "runner.key")]  # fmt: skip
        self.proc = subprocess.Popen(
            [
                script("uwv-server"), "serve", "--store", str(self.store), "--port", "0",
                "--port-file", str(port_file), "--tls", str(self.pki / "server"),
                "--tls-passphrase-file", str(self.work / "tls-passphrase"),
                "--registry", str(self.registry), "--drain-grace", "5",
                *(state if enclave else []), *extra,
            ],
            cwd=self.work,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
            text=True,
            env=env(),
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None:
                raise AssertionError(f"uwv-server exited:\n{self.log.read_text()}")
            assert time.monotonic() < deadline, "uwv-server did not start"
            time.sleep(0.05)
        self.port = int(port_file.read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def uwv_setup(work: Path, polis: Path) -> Uwv:
    """``load`` the polis, make the signing keys (SVB author, UWV approver, runner), one
    registry with the organisations' network roles, and a development PKI — all with the
    installed ``uwv-server``, from ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    uwv = Uwv(work, work / "store")
    run(work, "uwv-server", "load", "--polis", str(polis), "--store", str(uwv.store))
    for name, org, role in (("svb", "SVB", "author"), ("uwv", "UWV", "approver"),
                            ("runner", "UWV", "runner")):  # fmt: skip
        run(work, "uwv-server", "keys", "signing-init", "--key", f"{name}.key", "--owner", name)
        run(work, "uwv-server", "keys", "registry-add", "--registry", str(uwv.registry),
            "--key", f"{name}.key", "--name", name, "--organisation", org,
            "--role", role)  # fmt: skip
    (work / "tls-passphrase").write_text(PASSPHRASE + "\n")
    run(work, "uwv-server", "pki", "init", str(uwv.pki), "--passphrase-file",
        str(work / "tls-passphrase"), "--days", "2")  # fmt: skip
    with uwv.registry.open("a") as f:
        f.write(
            "organisations:\n"
            f'  - {{name: SVB, oin: "{SVB.oin}", roles: [screener]}}\n'
            '  - {name: ADR, oin: "00000099000000000030", roles: [auditor]}\n'
        )
    return uwv


def approve_rule(uwv: Uwv, svb_work: Path, rule: Path) -> str:
    """SVB submits ``rule`` over mutual TLS; UWV's operator approves it; its digest."""
    run(svb_work, "svb-client", "rules", "submit", str(rule), "--server", uwv.target,
        *uwv.tls(), "--key", str(uwv.work / "svb.key"))  # fmt: skip
    state = ["--state", str(uwv.work / "state"), "--registry", str(uwv.registry)]
    listing = run(uwv.work, "uwv-server", "rules", "list", *state).stdout
    rows = [line.split() for line in listing.splitlines()]
    pending = [row[0] for row in rows if len(row) > 1 and row[1] == "pending"]
    assert pending, listing
    run(uwv.work, "uwv-server", "rules", "approve", pending[0], *state,
        "--key", str(uwv.work / "uwv.key"))  # fmt: skip
    return pending[0]


__all__ = ["PASSPHRASE", "ROOT", "SVB", "UWV", "Uwv", "approve_rule", "run", "script", "uwv_setup"]
