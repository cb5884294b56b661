"""Shared fixtures: small polis stores, household files, a running UWV server."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.he.backend import SecretMaskedContext
from shared.he.params import MASKED_DEFAULT

ROOT = Path(__file__).resolve().parent.parent
AIO_RULE = ROOT / "rules" / "aio.yaml"
POLIS_COLUMNS = ("bsn", "relation_id", "kind", "month", "gross_cents", "tax_cents")
HOUSEHOLD_COLUMNS = ("household_id", "bsn", "category", "known_income_cents")


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def bsn_from(n: int) -> str:
    """The ``n``-th valid BSN of a deterministic sequence (for readable test data)."""
    from shared.bsn import complete_bsn

    prefix = 10_000_000 + n * 13
    while True:
        value = complete_bsn(prefix)
        if value is not None:
            return f"{value:09d}"
        prefix += 1


@pytest.fixture(scope="session")
def secret_context() -> SecretMaskedContext:
    """One masked-mode (BFV) key for the whole session: generation is the expensive part."""
    return SecretMaskedContext.generate(MASKED_DEFAULT)


@dataclass
class RunningServer:
    target: str
    port: int
    service: object
    server: object = None


@pytest.fixture
def start_server() -> Iterator[object]:
    """Start a real UWV gRPC server on a free localhost port for a given store."""
    from uwv_server.audit_trail import AuditTrail
    from uwv_server.budget import SqliteBudget
    from uwv_server.contexts import ContextRegistry
    from uwv_server.grpc.audit import audit_registrar
    from uwv_server.grpc.runtime import ServerLimits
    from uwv_server.grpc.server import TlsConfig, build_server
    from uwv_server.he_rules import ApprovedRules, PinnedRules
    from uwv_server.service import ScreeningService
    from uwv_server.store import Snapshot

    servers = []

    def _start(
        store: Path,
        budget: SqliteBudget | None = None,
        rules: ApprovedRules | None = None,
        modes: tuple[str, ...] = ("masked", "strict"),
        limits: ServerLimits | None = None,
        contexts: ContextRegistry | None = None,
        tls: TlsConfig | None = None,
    ) -> RunningServer:
        """``budget`` defaults to the store's ledger; ``rules`` to UWV computing the default
        rule only (the register's role in ``uwv-server serve``)."""
        if budget is None:
            budget = SqliteBudget(store / "budget.sqlite")
        trail = AuditTrail.open(store, ledger=budget)
        service = ScreeningService(
            Snapshot.open_current(store),
            contexts
            if contexts is not None
            # strict key checks with K=2 and the challenge pinned to set 0: fast, and the
            # accepted set is strict_secret_small (the attack suite tests the real choice)
            else ContextRegistry(
                store / "contexts", strict_key_sets=2, key_check_choose=lambda k: 0
            ),
            budget=budget,
            audit=trail,
            rules=rules if rules is not None else PinnedRules.from_files([AIO_RULE]),
            modes=modes,
        )
        service.recover()
        server, port = build_server(
            service, 0, extra_services=[audit_registrar(trail)], limits=limits, tls=tls
        )
        server.start()
        servers.append((server, service))
        host = "127.0.0.1" if tls is None else "localhost"
        return RunningServer(f"{host}:{port}", port, service, server)

    yield _start
    for server, service in servers:
        server.stop(grace=None)
        service.contexts.close()
        if service.audit is not None:
            service.audit.close()


@pytest.fixture(scope="session")
def strict_family_small() -> object:
    """SVB's strict-mode key (a family of seeded key sets) on the smaller N=8192 set."""
    from shared.he.keysets import StrictKeyFamily
    from shared.he.params import STRICT_BFV_N8192

    return StrictKeyFamily.generate(STRICT_BFV_N8192)


@pytest.fixture(scope="session")
def strict_secret_small(strict_family_small: Any) -> object:
    """Set 0 of :func:`strict_family_small`: the set test servers' key checks accept (their
    challenge is pinned to 0, see :func:`start_server`)."""
    return strict_family_small.key_set(0)


def accept_strict_over_grpc(stub: Any, family: Any, key_sets: int = 2) -> str:
    """Pass a test server's key check (raw protobuf): propose ``key_sets`` sets, open them."""
    from shared._proto.eligibility.v2 import eligibility_pb2 as pb

    contexts = family.public_contexts(key_sets)
    name = family.params.name
    reply = stub.ProposeKeySets(
        iter([pb.ProposeKeySetsRequest(parameter_set=name, context=c) for c in contexts])
    )
    seeds = family.openings(key_sets, reply.chosen_index)
    opened = stub.OpenKeySets(pb.OpenKeySetsRequest(proposal_id=reply.proposal_id, seeds=seeds))
    digest: str = opened.context_sha256
    return digest


@pytest.fixture
def channel_to() -> Iterator[object]:
    """Open gRPC channels for a test and close them at teardown (a channel left open until
    interpreter shutdown keeps gRPC's threads alive past the point where that is safe)."""
    import grpc

    channels: list[grpc.Channel] = []

    def _open(target: str) -> grpc.Channel:
        channel = grpc.insecure_channel(target)
        channels.append(channel)
        return channel

    yield _open
    for channel in channels:
        channel.close()
