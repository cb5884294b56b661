"""The isolated runner: ``python -I -m uwv_server.enclave.runner_main``.

Reads one job frame (:mod:`uwv_server.enclave.job`) from stdin: the approved rule, the batch,
the approvals, the path of the read-only snapshot and the runner's own signing key. Then it
confines itself (:mod:`uwv_server.enclave.sandbox`), parses and checks the rule, reads the
members' polis sums from the snapshot, evaluates the rule, and writes one result frame to
stdout: the outcomes (0 no, 1 yes, 2 refused by the budget) and the signed run statement.

Any failure ends the process with a result frame carrying ``error`` (and a non-zero exit);
a crash or a killed process leaves no frame and the parent reports that.
"""

from __future__ import annotations

import base64
import sys
import time
import traceback
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.crypto.keys import SigningKey
from shared.crypto.statement import (
    ApprovalRef,
    Isolation,
    RunPredicate,
    RunStatement,
    batch_digest,
    output_digest,
    salt_commitment,
)
from shared.errors import Error
from shared.models import Period
from shared.rules import Batch, check, digest, evaluate, parse_text
from shared.rules.batch import PersonMonths
from uwv_server.enclave import job
from uwv_server.enclave.engine import engine_digest
from uwv_server.enclave.sandbox import Confinement, Limits, confine, drop_privileges
from uwv_server.store import kind_sums, person_month_rows

IntArray = npt.NDArray[np.int64]


def run(header: dict[str, Any], arrays: dict[str, Any], confined: Confinement) -> bytes:
    """Evaluate the job; returns the result frame."""
    # The server's (injected) clock says when the run started; the runner adds its own
    # elapsed time, so a test clock gives reproducible statements.
    started = datetime.fromisoformat(header["started_at"])
    tick = time.monotonic()
    key = SigningKey.unsafe_from_raw(base64.b64decode(header.pop("runner_key")), "runner")
    limits = Limits(**header["limits"])
    period = Period.parse(header["period"])
    counts = np.asarray(arrays["member_counts"], np.int64)
    bsns = np.asarray(arrays["member_bsns"], np.int64)
    couple = np.asarray(arrays["is_couple"], np.uint8).astype(np.bool_)
    known = np.asarray(arrays["known_income_cents"], np.int64)
    sharers = np.asarray(arrays.get("cost_sharers", np.zeros(len(counts))), np.int64)
    refused = np.asarray(arrays["refused"], np.uint8).astype(np.bool_)
    salt = bytes.fromhex(header["salt"])
    keep = ~refused
    member_keep = np.repeat(keep, counts)
    # The data is read before privileges are dropped (the snapshot may be readable by its
    # owner only) and before the rule is even parsed.
    gross, tax = kind_sums(confined.data_root, period, bsns[member_keep], counts[keep])
    # Per person and month, for outputs with per: person_month (e.g. an exemption).
    pm_household, pm_gross, pm_tax = person_month_rows(
        confined.data_root, period, bsns[member_keep], counts[keep]
    )
    drop_privileges(limits)
    rule = parse_text(header["rule_yaml"], file="approved-rule")
    if digest(rule) != header["rule_digest"]:
        raise Error("the rule text does not have the approved digest")
    checked = check(rule)
    outcomes = np.full(len(counts), 2, dtype=np.uint8)
    if keep.any():
        batch = Batch.from_columns(
            period=period,
            gross_cents=gross,
            tax_cents=tax,
            is_couple=couple[keep],
            known_income_cents=known[keep],
            cost_sharers=sharers[keep],
            person_months=PersonMonths(pm_household, pm_gross, pm_tax),
        )
        decision = evaluate(checked, batch).decision
        if decision is None:
            raise Error("the rule returns no decision")
        outcomes[keep] = decision.astype(np.uint8)
    predicate = RunPredicate(
        run_id=header["run_id"],
        rule_digest=header["rule_digest"],
        engine_digest=header["engine_digest"],
        snapshot_digest=header["snapshot_digest"],
        batch_digest=batch_digest(
            salt, header["period"], counts, bsns, couple, known, cost_sharers=sharers
        ),
        output_digest=output_digest(salt, outcomes),
        salt_commitment=salt_commitment(salt),
        period=header["period"],
        household_count=len(counts),
        evaluated_count=int(keep.sum()),
        approvals=tuple(ApprovalRef.model_validate(a) for a in header["approvals"]),
        isolation=Isolation(
            network=confined.network,
            filesystem=confined.filesystem,
            uid=confined.uid,
            cpu_seconds=limits.cpu_seconds,
            memory_bytes=limits.memory_bytes,
            wall_seconds=limits.wall_seconds,
        ),
        started_at=started,
        finished_at=started + timedelta(seconds=time.monotonic() - tick),
    )
    envelope = RunStatement.of(predicate).sign(key)
    return job.encode(
        {"ok": True, "statement": envelope.to_json().decode()}, {"outcomes": outcomes}
    )


def main() -> int:
    out = sys.stdout.buffer
    try:
        header, arrays = job.decode(sys.stdin.buffer.read())
        header["engine_digest"] = engine_digest()  # before confinement: it reads source files
        limits = Limits(**header["limits"])
        confined = confine(Path(header["snapshot_dir"]), limits)
        frame = run(header, arrays, confined)
    except Error as exc:
        out.write(job.encode({"ok": False, "error": exc.diagnostics(), "kind": "rule"}, {}))
        return 3
    except MemoryError:
        out.write(job.encode({"ok": False, "error": "memory limit exceeded", "kind": "limit"}, {}))
        return 4
    except Exception as exc:  # the parent must get a reason, not a traceback on a pipe
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        out.write(
            job.encode({"ok": False, "error": f"runner error: {detail}", "kind": "crash"}, {})
        )
        return 5
    out.write(frame)
    return 0


if __name__ == "__main__":
    sys.exit(main())
