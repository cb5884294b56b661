"""Replay a compute-to-data run for an auditor: same rule, same data, same batch, same output.

Inputs: a verified export of UWV's audit log (and the log's key, obtained out of band), the
run's replay package (SVB keeps it: the batch exactly as sent, the salt and the outcomes SVB
received), the rule file, and UWV's store. Each check prints what was expected and found:

1. the run is in the verified log and is a compute-to-data run;
2. the rule file has the logged rule digest;
3. a snapshot in the store has the logged content digest (a replay on other data is refused);
4. the engine: same version digest, or the replay says it runs a different engine;
5. the salt matches the logged salt commitment, and the batch its logged batch digest;
6. recomputing the decisions gives the logged output digest; on a mismatch, which households
   differ from what SVB received.

The decisions are recomputed outside the runner, with the same per-kind lookup
(:func:`uwv_server.store.kind_sums`) and rule evaluator it uses: a replay shows that the logged
run is what this rule gives on this data and batch, not that the engine itself is right (the
rule's bundled test cases and the evaluator's property tests cover that).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.audit import RunEntry, RunMode, load_export, verify_export
from shared.audit.note import NoteVerifier
from shared.crypto.statement import batch_digest, output_digest
from shared.errors import Error
from shared.models import Period
from shared.rules import Batch, check, digest, evaluate, parse_file
from shared.rules.batch import PersonMonths
from uwv_server.enclave.engine import engine_digest
from uwv_server.enclave.snapshot import snapshot_digest
from uwv_server.store import Snapshot, person_month_rows


class ReplayFailed(Error):
    """The replay could not be carried out (inputs missing or unreadable)."""


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def _entry(export: Path, log_key: NoteVerifier, run_id: str) -> RunEntry:
    verified = verify_export(load_export(export), log_key)
    for entry in verified.entries:
        if entry.run_id == run_id:
            return entry
    raise ReplayFailed(f"run {run_id!r} is not in the verified log ({len(verified.entries)} runs)")


def _snapshot_with(store: Path, wanted: str | None) -> Snapshot | None:
    for folder in sorted((store / "snapshots").glob("*")):
        if (folder / "manifest.json").exists() and snapshot_digest(folder) == wanted:
            return Snapshot(folder)
    return None


def replay(
    *, export: Path, log_key: NoteVerifier, run_id: str, package: Path, rule: Path, store: Path
) -> list[Check]:
    """Carry out every check; the run replays iff all are ok."""
    entry = _entry(export, log_key, run_id)
    checks = [
        Check("in the verified log", True, f"entry for run {run_id}"),
        Check(
            "compute-to-data run",
            entry.mode is RunMode.COMPUTE_TO_DATA,
            f"mode {entry.mode.value}",
        ),
    ]
    rule_digest = digest(parse_file(rule))
    checks.append(
        Check(
            "rule",
            rule_digest == entry.rule_digest,
            f"logged {entry.rule_digest[:16]}…, file {rule_digest[:16]}…",
        )
    )
    snapshot = _snapshot_with(store, entry.snapshot_digest)
    checks.append(
        Check(
            "data snapshot",
            snapshot is not None,
            f"logged {str(entry.snapshot_digest)[:16]}…; "
            + ("found in the store" if snapshot else "no snapshot in the store has it"),
        )
    )
    engine = engine_digest()
    checks.append(
        Check(
            "engine",
            True,
            "same engine version"
            if engine == entry.engine_digest
            else f"different engine: logged {str(entry.engine_digest)[:16]}…, "
            f"replaying with {engine[:16]}…",
        )
    )
    try:
        with np.load(package) as z:
            pkg = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError) as exc:
        raise ReplayFailed(f"{package}: not a replay package: {exc}") from None
    if str(pkg["run_id"]) != run_id:
        raise ReplayFailed(f"{package} is the package of run {str(pkg['run_id'])!r}")
    salt = pkg["salt"].astype(np.uint8).tobytes()
    checks.append(
        Check(
            "salt",
            hashlib.sha256(salt).hexdigest() == entry.salt_commitment,
            "matches the logged commitment",
        )
    )
    period = str(pkg["period"])
    counts = pkg["member_counts"].astype(np.int64)
    bsns = pkg["member_bsns"].astype(np.int64)
    couple = pkg["is_couple"].astype(np.bool_)
    known = pkg["known_income_cents"].astype(np.int64)
    # a package of before the column: no household had cost-sharers
    sharers = pkg["cost_sharers"].astype(np.int64) if "cost_sharers" in pkg else None
    received = pkg["outcomes"].astype(np.uint8)
    bd = batch_digest(salt, period, counts, bsns, couple, known, cost_sharers=sharers)
    checks.append(Check("batch", bd == entry.batch_digest, f"{len(counts)} households"))
    if snapshot is None:
        checks.append(Check("output", False, "not recomputed: the snapshot is missing"))
        return checks
    outcomes = received.copy()  # households refused by the budget stay refused (2)
    keep = received != 2
    if keep.any():
        member_keep = np.repeat(keep, counts)
        gross, tax = snapshot.household_kind_sums(
            Period.parse(period), bsns[member_keep], counts[keep]
        )
        owner, pm_gross, pm_tax = person_month_rows(
            snapshot.directory, Period.parse(period), bsns[member_keep], counts[keep]
        )
        batch = Batch.from_columns(
            period=Period.parse(period),
            gross_cents=gross,
            tax_cents=tax,
            is_couple=couple[keep],
            known_income_cents=known[keep],
            cost_sharers=None if sharers is None else sharers[keep],
            person_months=PersonMonths(owner, pm_gross, pm_tax),  # per-person outputs
        )
        decision = evaluate(check(parse_file(rule)), batch).decision
        if decision is None:
            raise ReplayFailed("the rule returns no decision")
        outcomes[keep] = decision.astype(np.uint8)
    od = output_digest(salt, outcomes)
    differ = np.flatnonzero(outcomes != received)
    detail = (
        f"{int(keep.sum())} decisions recomputed, identical to what SVB received"
        if not differ.size
        else f"{differ.size} household(s) differ from what SVB received, at positions "
        f"{', '.join(str(int(i)) for i in differ[:10])}"
    )
    checks.append(Check("output", od == entry.result_digest and not differ.size, detail))
    return checks
