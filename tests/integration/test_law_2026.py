"""The 2026 law through every mode: a batch for 2026-01..06 and one for 2026-07..12, edges one
cent either side of each norm, cost-sharers A=2 and A=3 for singles and couples, work income
with the exemption below its cap (computed by UWV per person and month), decided by
masked, strict and compute-to-data mode exactly as the plaintext oracle (written from the law
text) decides them. The same batches through the installed CLIs over mutual TLS:
test_law_2026_cli.py."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.client_channel import ChannelSecurity
from shared.crypto import Role
from shared.models import Period
from shared.oracle import oracle_decisions
from svb_client.households import read_households
from svb_client.pipeline import ScreenJob, run_screen
from tests.conftest import POLIS_COLUMNS, bsn_from, write_csv
from tests.unit.enclave.enclave_testkit import (
    AIO_RULE,
    Clock,
    aio_bundle,
    approval,
    make_identities,
    make_service,
)
from uwv_server.contexts import ContextRegistry
from uwv_server.grpc.compute_to_data import enclave_registrar
from uwv_server.grpc.server import build_server
from uwv_server.he_rules import PinnedRules
from uwv_server.service import ScreeningService
from uwv_server.store import Snapshot, import_polis

COLUMNS = ("household_id", "bsn", "category", "known_income_cents", "cost_sharers")
HALF_YEARS = {
    "2026-01..2026-06": {"single": 156469, "couple": 214416, "a2": 107208, "a3": 92914},
    "2026-07..2026-12": {"single": 158734, "couple": 217610, "a2": 108805, "a3": 94298},
}
# A monthly net wage one cent-step below / exactly at the threshold of a single with known
# income 100000, after the exemption of art. 31 lid 2 onder n (25 %, below the cap).
WAGES = {"2026-01..2026-06": (75290, 75292), "2026-07..2026-12": (78310, 78312)}


def batch_files(
    tmp: Path, period: str, edges: tuple[tuple[str, int], ...] = (("below", 1), ("at", 0))
) -> tuple[Path, Path]:
    """Households one cent below and exactly at their threshold, per norm (``edges``: name
    and cents below the threshold; ``("above", -1)`` adds one cent above)."""
    norms = HALF_YEARS[period]
    p = Period.parse(period)
    months = [f"{p.start.year}-{m:02d}" for m in range(p.start.month, p.end.month + 1)]
    polis: list[list[object]] = []
    rows: list[list[object]] = []
    counter = iter(range(10_000))
    cases = [
        ("single", "single", 0, norms["single"], 150_000),
        ("couple", "couple", 0, norms["couple"], 200_000),
        ("a2-single", "single", 1, norms["a2"], 100_000),  # A = 2
        ("a3-single", "single", 2, norms["a3"], 90_000),  # A = 3
        ("a3-couple", "couple", 1, 2 * norms["a3"], 180_000),  # A = 3, both partners
    ]
    for name, category, sharers, norm, known in cases:
        for edge, minus in edges:
            hid = f"{name}-{edge}"
            total = len(months) * (norm - known) - minus
            size = 2 if category == "couple" else 1
            for member in range(size):
                bsn = bsn_from(next(counter))
                rows.append([hid, bsn, category, known // size, sharers])
                if member == 0:  # the whole pension on the first member, spread over months
                    per, rest = divmod(total, len(months))
                    for i, month in enumerate(months):
                        polis.append([bsn, 1, "pension", month, per + (rest if i == 0 else 0), 0])
    for edge, wage in zip(("below", "at"), WAGES[period], strict=True):
        bsn = bsn_from(next(counter))
        rows.append([f"wage-{edge}", bsn, "single", 100_000, 0])
        polis += [[bsn, 2, "wage", month, wage + 3_000, 3_000] for month in months]
    return (
        write_csv(tmp / "polis.csv", POLIS_COLUMNS, polis),
        write_csv(tmp / "households.csv", COLUMNS, rows),
    )


@pytest.fixture(params=sorted(HALF_YEARS))
def world(request: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    period = request.param
    polis, households = batch_files(tmp_path, period)
    store = tmp_path / "store"
    import_polis(polis, store)
    ids = make_identities()
    clock = Clock()
    enclave = make_service(tmp_path, store, ids, clock=clock)
    screening = ScreeningService(
        Snapshot.open_current(store),
        ContextRegistry(store / "contexts"),
        rules=PinnedRules.from_files([AIO_RULE]),
    )
    server, port = build_server(screening, 0, extra_services=[enclave_registrar(enclave)])
    server.start()
    d, envelope = aio_bundle(ids)
    enclave.submit(envelope)
    enclave.register.approve(approval(ids.uwv, Role.APPROVER, d), clock())
    enclave.register.approve(approval(ids.auditor, Role.AUDITOR, d), clock())
    yield {
        "period": Period.parse(period),
        "target": f"127.0.0.1:{port}",
        "households": households,
        "store": store,
        "registry": ids.registry,
        "tmp": tmp_path,
    }
    server.stop(grace=None)
    screening.contexts.close()


def decisions(path: Path) -> dict[str, tuple[str, str]]:
    with path.open(newline="") as f:
        return {r["household_id"]: (r["decision"], r["reason"]) for r in csv.DictReader(f)}


def test_every_mode_decides_as_the_2026_law(
    world: dict[str, Any], secret_context: Any, strict_family_small: Any
) -> None:
    w = world
    batch = read_households(w["households"])
    assert len(batch) == 12 and not batch.rejected
    records = Snapshot.open_current(w["store"]).directory / "records.parquet"
    expected = oracle_decisions(records, batch.households, w["period"])
    assert expected == {h: h.endswith("-below") for h in expected}  # the table above is right
    for mode, secret in (("masked", secret_context), ("strict", strict_family_small)):
        out = w["tmp"] / f"{mode}.csv"
        run_screen(
            ScreenJob(
                security=ChannelSecurity.unsafe_plaintext(),
                households=w["households"],
                period=w["period"],
                out=out,
                journal=w["tmp"] / f"{mode}.journal",
                mode=mode,
                secret=secret,
                server=w["target"],
                rule=AIO_RULE,
                progress=False,
            )
        )
        got = {h: d == "eligible" for h, (d, _) in decisions(out).items()}
        assert got == expected, mode
    out = w["tmp"] / "enclave.csv"
    run_screen(
        ScreenJob(
            security=ChannelSecurity.unsafe_plaintext(),
            households=w["households"],
            period=w["period"],
            out=out,
            journal=w["tmp"] / "enclave.journal",
            mode="enclave",
            registry=w["registry"],
            server=w["target"],
            rule=AIO_RULE,
            progress=False,
        )
    )
    got_enclave = {h: d == "eligible" for h, (d, _) in decisions(out).items()}
    assert got_enclave == expected  # cost-sharers included (art. 22a in the runner)
