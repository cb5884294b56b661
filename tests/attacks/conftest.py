"""A real UWV server for the attack suite, and a dishonest SVB that crafts its own messages.

The server serves all three modes on one durable budget, with the HE income definition taken
from its compute-to-data register (the default rule, approved by UWV and the auditor), as
``uwv-server serve`` does. The attacker talks raw protobuf over a gRPC channel: it builds the
bytes itself (:func:`header_bytes`, :func:`chunk_bytes`) and never goes through the client.

The victim has a net monthly income of :data:`VICTIM_INCOME` cents in every month of 2024 and
2025 (a pension; gross − tax withheld).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import grpc
import numpy as np
import pytest

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared.audit import RunEntry
from shared.crypto import Role
from shared.digests import sha256_hex
from shared.he.backend import SecretMaskedContext
from shared.he.masked import encode_thresholds
from tests.conftest import POLIS_COLUMNS, bsn_from, write_csv
from tests.unit.enclave.enclave_testkit import (
    Clock,
    Identities,
    aio_bundle,
    approval,
    make_identities,
)
from uwv_server.audit_trail import AuditTrail
from uwv_server.budget import SqliteBudget
from uwv_server.contexts import ContextRegistry
from uwv_server.enclave.approvals import RuleRegister
from uwv_server.enclave.sandbox import Limits
from uwv_server.enclave.service import EnclaveConfig, EnclaveService
from uwv_server.grpc.audit import audit_registrar
from uwv_server.grpc.compute_to_data import enclave_registrar
from uwv_server.grpc.server import build_server
from uwv_server.he_rules import RegisterRules
from uwv_server.service import ScreeningService
from uwv_server.store import Snapshot, import_polis

LIMIT: Final = 4
"""The yearly budget of the attacked server (every mode together)."""
VICTIM_INCOME: Final = 123_456
VICTIM: Final = int(bsn_from(1))
BYSTANDERS: Final = [int(bsn_from(100 + i)) for i in range(400)]
SCREEN: Final = "/eligibility.v2.ScreeningService/Screen"


@dataclass
class Uwv:
    target: str
    channel: grpc.Channel
    budget: SqliteBudget
    trail: AuditTrail
    screening: ScreeningService
    enclave: EnclaveService
    ids: Identities
    rule_digest: str
    masked_context: str
    tmp: Path

    def screen(self, messages: list[bytes]) -> list[pb.ScreenResponse]:
        """One Screen stream of hand-made request bytes; the responses, parsed."""
        call = self.channel.stream_stream(
            SCREEN, response_deserializer=pb.ScreenResponse.FromString
        )
        return list(call(iter(messages)))

    def entries(self) -> list[RunEntry]:
        log = self.trail.service.log
        return log.entries(0, log.size)

    def used(self, bsn: int = VICTIM, year: int = 2025) -> int:
        return self.budget.used(bsn, year)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def field_bytes(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, by hand."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def header_bytes(
    uwv: Uwv,
    batch_id: str,
    *,
    mode: int = pb.MODE_MASKED,
    period: str = "2025-01..2025-12",
    context: str | None = None,
    rule: str | None = None,
    extra: bytes = b"",
) -> bytes:
    """``ScreenRequest{header}``; ``extra`` appends raw fields to the header (e.g. field 7)."""
    header = pb.BatchHeader(
        batch_id=batch_id,
        context_sha256=context or uwv.masked_context,
        mode=mode,  # type: ignore[arg-type]
        period=period,
        rule_digest=rule or uwv.rule_digest,
    ).SerializeToString()
    return field_bytes(1, header + extra)


def chunk_bytes(index: int, counts: list[int], bsns: list[int], cts: list[bytes]) -> bytes:
    chunk = pb.Chunk(index=index, member_counts=counts, member_bsns=bsns, ciphertexts=cts)
    return pb.ScreenRequest(chunk=chunk).SerializeToString()


def masked_ct(secret: SecretMaskedContext, monthly_thresholds: list[int]) -> bytes:
    """SVB's encrypted monthly thresholds (cents), one per slot, for a 12-month period."""
    totals = np.asarray(monthly_thresholds, dtype=np.int64) * 12
    return secret.encrypt(encode_thresholds(totals, 12))


def results(responses: list[pb.ScreenResponse]) -> list[pb.ChunkResult]:
    return [r.result for r in responses if r.WhichOneof("item") == "result"]


@pytest.fixture
def uwv(tmp_path: Path, secret_context: SecretMaskedContext) -> Iterator[Uwv]:
    rows: list[list[Any]] = []
    for year in (2024, 2025):
        for m in range(1, 13):
            month = f"{year}-{m:02d}"
            rows.append([VICTIM, 1, "pension", month, VICTIM_INCOME + 20_000, 20_000])
            for i, b in enumerate(BYSTANDERS[:50]):
                rows.append([b, 2, "pension", month, 90_000 + 1_000 * i, 10_000])
    polis = write_csv(tmp_path / "polis.csv", POLIS_COLUMNS, rows)
    store = tmp_path / "store"
    import_polis(polis, store)
    snapshot = Snapshot.open_current(store)
    ids = make_identities()
    clock = Clock()
    budget = SqliteBudget(store / "budget.sqlite", limit=LIMIT)
    trail = AuditTrail.open(store, ledger=budget)
    register = RuleRegister(tmp_path / "state" / "enclave.sqlite", ids.registry)
    enclave = EnclaveService(
        snapshot,
        register,
        ids.registry,
        ids.runner,
        EnclaveConfig(state_dir=tmp_path / "state", limits=Limits(wall_seconds=120)),
        budget=budget,
        clock=clock,
        on_statement=trail.record_statement,
        on_unlogged=trail.log_batch,
    )
    digest, envelope = aio_bundle(ids)
    enclave.submit(envelope)
    register.approve(approval(ids.uwv, Role.APPROVER, digest), clock())
    register.approve(approval(ids.auditor, Role.AUDITOR, digest), clock())
    screening = ScreeningService(
        snapshot,
        ContextRegistry(store / "contexts"),
        budget=budget,
        audit=trail,
        rules=RegisterRules.of(register, clock),
        clock=clock,
    )
    server, port = build_server(
        screening, 0, extra_services=[audit_registrar(trail), enclave_registrar(enclave)]
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    public = secret_context.public_bytes()
    upload = channel.unary_unary(
        "/eligibility.v2.ScreeningService/UploadContext",
        response_deserializer=pb.UploadContextResponse.FromString,
    )
    upload(
        pb.UploadContextRequest(
            parameter_set=secret_context.params.name, context=public
        ).SerializeToString()
    )
    yield Uwv(
        f"127.0.0.1:{port}",
        channel,
        budget,
        trail,
        screening,
        enclave,
        ids,
        digest,
        sha256_hex(public),
        tmp_path,
    )
    channel.close()
    server.stop(grace=None)
    screening.contexts.close()
    trail.close()
    budget.close()
    register.close()
