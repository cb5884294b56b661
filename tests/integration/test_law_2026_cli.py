"""The 2026 law through the installed console scripts, run from a directory that is not the
checkout (issue 11), over mutual TLS with a real ``uwv-server serve`` (issue 10).

One UWV server holds the polis of all of 2026; SVB screens a batch for 2026-01..2026-06 and
one for 2026-07..2026-12 in masked, strict and compute-to-data mode with ``svb-client`` and the
rule shipped in the package. The households sit one cent below, exactly at and one cent above
each norm (art. 22; art. 22a with A=2 and A=3 for singles and a couple), and two have work
income with the exemption of art. 31 lid 2 onder n below its cap. Every decision in every
outreach file equals the plaintext oracle (``shared.oracle``, the independent copy of the
law) and the bits written down by hand below. A 2027 period is refused naming the newest
norm, with nothing decided.

Then the auditor's view: the log fetched over mutual TLS verifies with ``aio-audit``, every
entry (masked, strict, enclave) names SVB's OIN from its certificate, and each enclave run
replays (``uwv-server audit replay``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

import pytest

from shared.audit import RunMode, load_export, verify_export
from shared.audit.note import parse_skey, parse_vkey
from shared.models import Period
from shared.oracle import oracle_decisions
from svb_client.households import read_households
from tests.conftest import POLIS_COLUMNS, write_csv
from tests.integration.cli_kit import ROOT, SVB, Uwv, approve_rule, run, uwv_setup
from tests.integration.test_law_2026 import batch_files
from uwv_server.store import Snapshot

pytestmark = pytest.mark.slow

PERIODS: Final = ("2026-01..2026-06", "2026-07..2026-12")
MODES: Final = ("masked", "strict", "enclave")
EDGES: Final = (("below", 1), ("at", 0), ("above", -1))
# Written down by hand: one cent below the norm is eligible, at or above it is not; the wage
# cases sit one cent-step below / at the threshold after the 25 % exemption (below its cap).
EXPECTED: Final = {
    "single-below": True, "single-at": False, "single-above": False,
    "couple-below": True, "couple-at": False, "couple-above": False,
    "a2-single-below": True, "a2-single-at": False, "a2-single-above": False,
    "a3-single-below": True, "a3-single-at": False, "a3-single-above": False,
    "a3-couple-below": True, "a3-couple-at": False, "a3-couple-above": False,
    "wage-below": True, "wage-at": False,
}  # fmt: skip
SHIPPED_RULE: Final = Path(str(files("shared.rules.data") / "aio.yaml"))


def _outreach(path: Path) -> dict[str, tuple[str, str]]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    by_id = {r["household_id"]: (r["decision"], r["reason"]) for r in rows}
    assert len(by_id) == len(rows), "a household appears twice"
    return by_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("law-cli")
    assert not base.resolve().is_relative_to(ROOT), "the test must run outside the checkout"
    households: dict[str, Path] = {}
    polis_rows: list[list[str]] = []
    for period in PERIODS:
        folder = base / "data" / period.replace("..", "_")
        folder.mkdir(parents=True)
        polis, households[period] = batch_files(folder, period, edges=EDGES)
        with polis.open(newline="") as f:
            polis_rows += list(csv.reader(f))[1:]
    polis = write_csv(base / "data" / "polis-2026.csv", POLIS_COLUMNS, polis_rows)
    uwv = uwv_setup(base / "uwv", polis)
    uwv.serve()
    svb = base / "svb"
    svb.mkdir()
    (svb / "passphrase").write_text("svb key passphrase\n")
    try:
        digest = approve_rule(uwv, svb, SHIPPED_RULE)
        yield {"uwv": uwv, "svb": svb, "households": households, "digest": digest}
    finally:
        uwv.stop()


def _screen(w: dict[str, Any], households: Path, period: str, mode: str, *, ok: bool = True) -> Any:
    uwv: Uwv = w["uwv"]
    svb: Path = w["svb"]
    args = ["screen", "--server", uwv.target, *uwv.tls(), "--households",
            str(households), "--period", period, "--mode", mode,
            "--out", f"{mode}-{period[:7]}.csv", "--quiet"]  # fmt: skip
    if mode == "enclave":
        args += ["--registry", str(uwv.registry)]
    else:
        args += ["--passphrase-file", "passphrase", "--key", f"key-{mode}.enc"]
    if mode == "strict":
        args += ["--parameter-set", "bfv-strict-n8192"]  # the small strict set: a fast test
    return run(svb, "svb-client", *args, ok=ok)


def test_2026_decided_as_the_law_in_every_mode_through_the_installed_clis(
    world: dict[str, Any],
) -> None:
    w = world
    uwv: Uwv = w["uwv"]
    records = Snapshot.open_current(uwv.store).directory / "records.parquet"
    for period in PERIODS:
        hh = w["households"][period]
        batch = read_households(hh)
        assert not batch.rejected and len(batch) == len(EXPECTED)
        oracle = oracle_decisions(records, batch.households, Period.parse(period))
        assert oracle == EXPECTED, period  # the independent law copy agrees with the hand bits
        for mode in MODES:
            _screen(w, hh, period, mode)
            got = _outreach(w["svb"] / f"{mode}-{period[:7]}.csv")
            assert {h: d for h, (d, _) in got.items()} == {
                h: "eligible" if want else "not_eligible" for h, want in EXPECTED.items()
            }, (period, mode)

    # the auditor: fetch over mutual TLS, verify, every entry names SVB's OIN, enclave replays
    auditor = uwv.work.parent / "auditor"
    auditor.mkdir()
    run(auditor, "aio-audit", "fetch", "--server", uwv.target, "--out", "export.jsonl",
        *uwv.tls("auditor"))  # fmt: skip
    vkey = parse_skey((uwv.store / "keys" / "log.skey").read_text()).verifier.vkey()
    verified = run(auditor, "aio-audit", "verify", "export.jsonl", "--log-key", vkey)
    assert "OK" in verified.stdout or "verified" in verified.stdout.lower(), verified.stdout
    entries = verify_export(load_export(auditor / "export.jsonl"), parse_vkey(vkey)).entries
    # strict mode's key check (issue 14) is an entry of its own, under SVB's OIN too
    checks = [e for e in entries if e.key_check is not None]
    assert [e.key_check for e in checks] == ["accepted"]
    modes = sorted(e.mode.value for e in entries if e.key_check is None)
    assert modes == sorted(
        m.value for m in (RunMode.HE_MASKED, RunMode.HE_STRICT, RunMode.COMPUTE_TO_DATA) * 2
    )
    for entry in entries:
        assert SVB.oin in entry.requester, (entry.mode, entry.requester)
    for entry in (e for e in entries if e.mode == RunMode.COMPUTE_TO_DATA):
        packages = list(w["svb"].glob(f"enclave-*.csv.replay/{entry.run_id}.npz"))
        assert len(packages) == 1, entry.run_id
        replayed = run(
            uwv.work, "uwv-server", "audit", "replay", "--store", str(uwv.store),
            "--export", str(auditor / "export.jsonl"), "--log-key", vkey,
            "--run-id", entry.run_id, "--package", str(packages[0]),
            "--rule", str(SHIPPED_RULE),
        )  # fmt: skip
        assert "VERDICT: the run replays" in replayed.stdout and "FAIL" not in replayed.stdout


@pytest.mark.parametrize("mode", MODES)
def test_2027_is_refused_naming_the_newest_norm_and_nothing_is_decided(
    world: dict[str, Any], mode: str
) -> None:
    hh = world["households"][PERIODS[1]]
    result = _screen(world, hh, "2027-01..2027-06", mode, ok=False)
    assert result.returncode == 2
    assert "period 2027-01..2027-06" in result.stderr
    assert "from 2026-07-01" in result.stderr and "until 2026-12-31" in result.stderr
    assert not (world["svb"] / f"{mode}-2027-01.csv").exists()  # no household decided
