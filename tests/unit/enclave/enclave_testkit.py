"""Shared set-up for the compute-to-data tests: identities, a small store, a service."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.crypto import (
    Approval,
    ApprovalPolicy,
    KeyEntry,
    Registry,
    Requirement,
    Role,
    RuleBundle,
    SigningKey,
)
from shared.models import Period
from shared.rules import digest, parse_file
from uwv_server.budget import SqliteBudget
from uwv_server.enclave.approvals import RuleRegister
from uwv_server.enclave.sandbox import Limits
from uwv_server.enclave.service import EnclaveConfig, EnclaveService
from uwv_server.store import Snapshot, import_polis
from uwv_server.synth import generate

ROOT = Path(__file__).resolve().parents[3]
AIO_RULE = ROOT / "rules" / "aio.yaml"
PERIOD = Period.parse("2025-01..2025-12")
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
FAST_SCRYPT = 2**10  # tests only: the real default is 2**15


@dataclass
class Identities:
    svb: SigningKey
    uwv: SigningKey
    auditor: SigningKey
    runner: SigningKey
    outsider: SigningKey
    registry: Registry


def make_identities(*, with_auditor: bool = True) -> Identities:
    keys = {n: SigningKey.generate(n) for n in ("svb", "uwv", "auditor", "runner", "outsider")}
    entries = [
        KeyEntry(
            name="svb",
            organisation="SVB",
            roles=frozenset({Role.AUTHOR}),
            public_key=keys["svb"].public.to_b64(),
        ),
        KeyEntry(
            name="uwv",
            organisation="UWV",
            roles=frozenset({Role.APPROVER}),
            public_key=keys["uwv"].public.to_b64(),
        ),
        KeyEntry(
            name="auditor",
            organisation="ADR",
            roles=frozenset({Role.AUDITOR}),
            public_key=keys["auditor"].public.to_b64(),
        ),
        KeyEntry(
            name="runner",
            organisation="UWV",
            roles=frozenset({Role.RUNNER}),
            public_key=keys["runner"].public.to_b64(),
        ),
    ]
    required = [Requirement(role=Role.APPROVER, organisation="UWV")]
    if with_auditor:
        required.append(Requirement(role=Role.AUDITOR))
    registry = Registry(
        keys=tuple(entries),
        approval_policy=ApprovalPolicy(required=tuple(required), max_validity_days=90),
    )
    return Identities(
        keys["svb"], keys["uwv"], keys["auditor"], keys["runner"], keys["outsider"], registry
    )


def aio_bundle(ids: Identities, path: Path = AIO_RULE) -> tuple[str, bytes]:
    """(digest, signed envelope JSON) of a rule file, signed by SVB."""
    d = digest(parse_file(path))
    bundle = RuleBundle(rule_digest=d, rule_yaml=path.read_text())
    return d, bundle.sign(ids.svb).to_json()


def approval(
    key: SigningKey, role: Role, d: str, *, start: datetime = NOW, days: float = 30
) -> bytes:
    return Approval.for_window(d, role, start - timedelta(hours=1), days).sign(key).to_json()


def make_store(tmp: Path, households: int = 300, seed: int = 7) -> tuple[Path, Path]:
    """(store directory, households file) from the synthetic generator."""
    generate(households, PERIOD, tmp / "synth", seed=seed)
    import_polis(tmp / "synth" / "polis.parquet", tmp / "store")
    return tmp / "store", tmp / "synth" / "households.parquet"


class Clock:
    """A settable clock."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_service(
    tmp: Path,
    store: Path,
    ids: Identities,
    *,
    clock: Clock | None = None,
    budget_limit: int | None = None,
    limits: Limits | None = None,
) -> EnclaveService:
    state = tmp / "enclave-state"
    register = RuleRegister(state / "enclave.sqlite", ids.registry)
    budget = (
        SqliteBudget(state / "budget.sqlite", limit=budget_limit)
        if budget_limit is not None
        else None
    )
    return EnclaveService(
        Snapshot.open_current(store),
        register,
        ids.registry,
        ids.runner,
        EnclaveConfig(state_dir=state, limits=limits or Limits(wall_seconds=120)),
        budget=budget,
        clock=clock or Clock(),
    )


def running_as_root() -> bool:
    return os.geteuid() == 0
