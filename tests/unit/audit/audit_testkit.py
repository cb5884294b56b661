"""Helpers for the audit log tests: fixed keys, test vectors, deterministic entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.audit import (
    BatchSalt,
    BudgetUse,
    RunEntry,
    digest_batch,
    digest_result,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "rfc6962"
ORIGIN = "uwv.example/aio-audit/test"
T0 = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)


def load_vectors(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def fixed_key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def make_entry(i: int, salt: BatchSalt | None = None) -> RunEntry:
    """A deterministic, valid entry number ``i`` (no personal data in clear)."""
    salt = salt or BatchSalt(bytes([i % 256]) * 32)
    households = [(f"h{i}", ["111222333"])]
    return RunEntry.create(
        run_id=f"run-{i:06x}",
        requester="svb.example/batch-runner",
        rule_digest=f"{i:064x}",
        mode="he-masked" if i % 2 else "compute-to-data",
        parameter_set="ckks-n8192-masked",
        period="2025-01..2025-06",
        household_count=1,
        salt_commitment=salt.commitment(),
        batch_digest=digest_batch(salt, households),
        result_digest=digest_result(salt, [(f"h{i}", i % 3 == 0)]),
        budget=BudgetUse(bsns_charged=1),
        requested_at=T0 + timedelta(seconds=i),
        started_at=T0 + timedelta(seconds=i, milliseconds=1),
        finished_at=T0 + timedelta(seconds=i, milliseconds=2),
        approvals=[{"approver": "uwv.example/rules", "key_id": "0a0b0c0d", "signature": "c2ln"}],
    )
