"""A dishonest SVB against strict mode, over a real gRPC server (issue 14).

Degenerate public keys and malformed uploads are refused before anything is charged; crafted
digit indicators (not one-hot) come back as integrity errors, never as decisions. Malformed
relinearisation keys and the key check that catches them: ``test_strict_key_check.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import craft
import grpc
import numpy as np
import pytest
import tenseal as ts
import tenseal.sealapi as sealapi

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared._proto.eligibility.v2 import eligibility_pb2_grpc as pb_grpc
from shared.he import strict
from shared.he.params import STRICT_BFV_N8192 as S
from shared.models import Period
from shared.rules import digest as rule_digest_of
from shared.rules import parse_file
from tests.conftest import AIO_RULE, POLIS_COLUMNS, accept_strict_over_grpc, bsn_from, write_csv
from uwv_server.budget import SqliteBudget
from uwv_server.store import import_polis

pytestmark = pytest.mark.attack

PERIOD = Period.parse("2025-01..2025-12")
HOUSEHOLDS = 64
RULE_DIGEST = rule_digest_of(parse_file(AIO_RULE))


@pytest.fixture
def uwv(tmp_path: Path, start_server: Any, channel_to: Any) -> Any:
    rows = [
        [bsn_from(i), 1, "pension", f"2025-{m:02d}", 100_000 + 1_000 * i, 100]
        for i in range(HOUSEHOLDS)
        for m in range(1, 13)
    ]
    import_polis(write_csv(tmp_path / "p.csv", POLIS_COLUMNS, rows), tmp_path / "store")
    budget = SqliteBudget(tmp_path / "store" / "budget.sqlite", limit=100)
    server = start_server(tmp_path / "store", budget=budget)
    stub = pb_grpc.ScreeningServiceStub(channel_to(server.target))
    return stub, budget, [int(bsn_from(i)) for i in range(HOUSEHOLDS)]


def _context_with_public_key(public: bytes, change: str) -> bytes:
    """SVB's public context with its public key's random part replaced by hand."""
    ctx = ts.context_from(public)
    parms = sealapi.EncryptionParameters(sealapi.SCHEME_TYPE.BFV)
    parms.set_poly_modulus_degree(S.poly_modulus_degree)
    parms.set_coeff_modulus(
        sealapi.CoeffModulus.Create(S.poly_modulus_degree, list(S.coeff_mod_bit_sizes))
    )
    parms.set_plain_modulus(sealapi.Modulus(S.plain_modulus))
    seal = sealapi.SEALContext(parms, True, sealapi.SEC_LEVEL_TYPE.TC128)
    pk = craft.load(sealapi.PublicKey(), seal, craft.save(ctx.public_key().data))
    polys = craft.residues(pk.data())
    if change == "a-zero":
        polys[1] = 0
    elif change == "a-constant":
        polys[1] = 3
    else:
        polys[:] = 0
    craft.load(
        ctx.public_key().data,
        ctx.seal_context().data,
        craft.raw_bytes(list(pk.parms_id()), True, polys),
    )
    out: bytes = ctx.serialize(
        save_public_key=True, save_secret_key=False, save_galois_keys=False, save_relin_keys=True
    )
    return out


@pytest.mark.parametrize("change", ["a-zero", "a-constant", "all-zero", "not-rebased"])
def test_degenerate_public_keys_are_refused(
    uwv: Any, strict_secret_small: Any, strict_family_small: Any, change: str
) -> None:
    stub, *_ = uwv
    if change == "not-rebased":
        # SVB's own TenSEAL context as TenSEAL makes it: a is SEAL's random choice, not UWV's.
        plain = ts.context(
            ts.SCHEME_TYPE.BFV, S.poly_modulus_degree, S.plain_modulus, list(S.coeff_mod_bit_sizes)
        )
        plain.generate_relin_keys()
        data = plain.serialize(
            save_public_key=True,
            save_secret_key=False,
            save_galois_keys=False,
            save_relin_keys=True,
        )
    else:
        data = _context_with_public_key(strict_secret_small.public_bytes(), change)
    # A plain upload of a strict context is refused outright (keys go through the key check)
    with pytest.raises(grpc.RpcError) as info:
        stub.UploadContext(pb.UploadContextRequest(parameter_set=S.name, context=data))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    # and in the key check's chosen slot (the test server pins it to 0) it is a caught cheat
    other = strict_family_small.key_set(1).public_bytes()
    messages = [pb.ProposeKeySetsRequest(parameter_set=S.name, context=c) for c in (data, other)]
    reply = stub.ProposeKeySets(iter(messages))
    with pytest.raises(grpc.RpcError) as info:
        stub.OpenKeySets(
            pb.OpenKeySetsRequest(
                proposal_id=reply.proposal_id, seeds=strict_family_small.openings(2, 0)
            )
        )
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert "common polynomial" in info.value.details()  # type: ignore[attr-defined]


def _screen(stub: Any, digest: str, bsns: list[int], ciphertexts: list[bytes]) -> pb.ChunkResult:
    header = pb.BatchHeader(
        batch_id="attack-strict",
        context_sha256=digest,
        mode=pb.MODE_STRICT,
        period=str(PERIOD),
        rule_digest=RULE_DIGEST,
        requester="svb-dishonest",
    )
    chunk = pb.Chunk(
        index=0, member_counts=[1] * len(bsns), member_bsns=bsns, ciphertexts=ciphertexts
    )
    requests = [pb.ScreenRequest(header=header), pb.ScreenRequest(chunk=chunk)]
    responses = list(stub.Screen(iter(requests)))
    return responses[0].result


def _upload(stub: Any, family: Any) -> str:
    """Pass the server's key check (K=2, challenge pinned to set 0: the test server's)."""
    return str(accept_strict_over_grpc(stub, family))


@pytest.mark.parametrize("shape", ["count", "size-3"])
def test_malformed_uploads_are_refused_before_any_charge(
    uwv: Any, strict_secret_small: Any, strict_family_small: Any, shape: str
) -> None:
    stub, budget, bsns = uwv
    digest = _upload(stub, strict_family_small)
    x = np.full(HOUSEHOLDS, 1_500_000, dtype=np.int64)
    cts = strict.encrypt_thresholds(strict_secret_small, x, 12)
    secret_ctx = ts.context_from(strict_secret_small.secret_bytes())
    if shape == "count":
        cts = cts[:-1]
    else:
        secret_ctx.auto_relin = False
        vec = ts.bfv_vector_from(secret_ctx, cts[0])
        cts[0] = (vec * vec).serialize()  # a product never relinearised: 3 polynomials
    result = _screen(stub, digest, bsns, cts)
    assert result.error.code == pb.ERROR_CODE_INVALID_CIPHERTEXT, result
    assert sum(budget.used(b, 2025) for b in bsns) == 0


def test_non_one_hot_digits_give_integrity_errors_not_decisions(
    uwv: Any, strict_secret_small: Any, strict_family_small: Any
) -> None:
    """Weights 1, 2, 3 in one digit's indicators would read several of UWV's digits from one
    result; the validity check turns every such slot into a random value."""
    stub, _, bsns = uwv
    digest = _upload(stub, strict_family_small)
    x = np.full(HOUSEHOLDS, 1_500_000, dtype=np.int64)
    cts = strict.encrypt_thresholds(strict_secret_small, x, 12)
    per_digit = (1 << S.digit_bits) - 1
    top = (S.digits - 1) * per_digit
    for d in range(per_digit):
        cts[top + d] = strict_secret_small.encrypt(np.full(HOUSEHOLDS, d + 1, dtype=np.int64))
    result = _screen(stub, digest, bsns, cts)
    decisions = strict.decrypt_decisions(strict_secret_small, result.ciphertexts[0], HOUSEHOLDS)
    assert not decisions.valid.any()
