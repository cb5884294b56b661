"""A dishonest SVB against masked mode, over a real gRPC server (issue 14).

Keys and ciphertexts are written by hand with ``tenseal.sealapi`` and raw residues
(``craft``), never through the project's client. Each attack either is refused before
anything is charged (the budget is unchanged), or is answered and then recovers UWV's totals
no better than from an honest answer. The same attack code recovers every total from the old,
unprotected evaluation (``unsafe_evaluate_unprotected``), so it is a real attack.
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
from shared.digests import sha256_hex
from shared.he import masked
from shared.he.backend import DEFAULT_CRS_SEED, PublicMaskedContext, SecretMaskedContext, crs_a
from shared.he.params import MASKED_DEFAULT as P
from shared.models import Period
from shared.rules import digest as rule_digest_of
from shared.rules import parse_file
from tests.conftest import AIO_RULE, POLIS_COLUMNS, bsn_from, write_csv
from uwv_server.budget import SqliteBudget
from uwv_server.store import import_polis

pytestmark = pytest.mark.attack

PERIOD = Period.parse("2025-01..2025-12")
HOUSEHOLDS = 512
RULE_DIGEST = rule_digest_of(parse_file(AIO_RULE))


@pytest.fixture(scope="module")
def seal() -> tuple[Any, int, list[int]]:
    return craft.bfv_context(
        P.poly_modulus_degree, list(P.coeff_mod_bit_sizes), P.plain_modulus_bits
    )


@pytest.fixture
def uwv(tmp_path: Path, start_server: Any, channel_to: Any) -> Any:
    """A store of single-person households with known yearly totals, a budgeted server."""
    rng = np.random.default_rng(14)
    monthly = rng.integers(50_000, 300_000, HOUSEHOLDS)
    rows = [
        [bsn_from(i), 1, "pension", f"2025-{m:02d}", int(monthly[i]) + 100, 100]
        for i in range(HOUSEHOLDS)
        for m in range(1, 13)
    ]
    import_polis(write_csv(tmp_path / "p.csv", POLIS_COLUMNS, rows), tmp_path / "store")
    budget = SqliteBudget(tmp_path / "store" / "budget.sqlite", limit=100)
    server = start_server(tmp_path / "store", budget=budget)
    stub = pb_grpc.ScreeningServiceStub(channel_to(server.target))
    bsns = [int(bsn_from(i)) for i in range(HOUSEHOLDS)]
    return stub, budget, bsns, 12 * monthly


def _upload(stub: Any, data: bytes, name: str = P.name) -> str:
    stub.UploadContext(pb.UploadContextRequest(parameter_set=name, context=data))
    return sha256_hex(data)


def _screen(stub: Any, digest: str, bsns: list[int], ciphertext: bytes) -> pb.ChunkResult:
    header = pb.BatchHeader(
        batch_id="attack",
        context_sha256=digest,
        mode=pb.MODE_MASKED,
        period=str(PERIOD),
        rule_digest=RULE_DIGEST,
        requester="svb-dishonest",
    )
    chunk = pb.Chunk(
        index=0, member_counts=[1] * len(bsns), member_bsns=bsns, ciphertexts=[ciphertext]
    )
    responses = list(
        stub.Screen(iter([pb.ScreenRequest(header=header), pb.ScreenRequest(chunk=chunk)]))
    )
    return responses[0].result


def _charged(budget: SqliteBudget, bsns: list[int]) -> int:
    return sum(budget.used(b, 2025) for b in bsns)


def _recovered(values: np.ndarray, masks: np.ndarray, x: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of totals the attacker gets exactly from v and its estimate of the masks r."""
    r = np.where(masks == 0, 1, masks).astype(np.float64)
    estimate = np.round(x - (values / r + 1) / 2).astype(np.int64)
    return float((estimate == masked.clamp_totals(truth)).mean())


def _noise(phase: list[int], t: int, modulus: int) -> list[int]:
    """The decryption noise ``w − (Q/t)·m`` of each coefficient, exactly (integers)."""
    out = []
    for w in phase:
        m = (w * t + modulus // 2) // modulus
        out.append((w * t - m * modulus) // t)
    return out


def _centred(values: list[int], q: int) -> list[int]:
    return [v % q - q if v % q > q // 2 else v % q for v in values]


def _decode_masks(seal: Any, coefficients: list[int], t: int) -> np.ndarray:
    """Attacker's reading of a polynomial as UWV's multiplier 2r: coefficients mod t, decoded."""
    ctx = seal[0]
    text = " + ".join(
        f"{c % t:X}x^{i}" if i else f"{c % t:X}"
        for i, c in reversed(list(enumerate(coefficients)))
        if c % t
    )
    plain = sealapi.Plaintext(text or "0")
    slots = np.asarray(sealapi.BatchEncoder(ctx).decode_int64(plain), dtype=np.int64)
    return slots // 2


def _constant_c1_ciphertext(seal: Any, sk: Any, x: np.ndarray, c: int) -> bytes:
    """A valid encryption of x whose c1 is the constant polynomial c (c0 fixed up so that it
    still decrypts to x, as the issue's attacker did)."""
    ctx, _t, primes = seal
    plain = sealapi.Plaintext()
    padded = np.zeros(P.slots, dtype=np.int64)
    padded[: len(x)] = x
    sealapi.BatchEncoder(ctx).encode(padded.tolist(), plain)
    ct = sealapi.Ciphertext()
    sealapi.Encryptor(ctx, sk).encrypt_symmetric(plain, ct)
    return craft.with_constant_c1(ctx, sk, ct, c, primes)


def test_constant_c1_recovers_every_total_without_protection(
    seal: Any, secret_context: SecretMaskedContext
) -> None:
    """The attack is real: against the unprotected evaluation it reads every mask from c1."""
    ctx, t, primes = seal
    sk = craft.secret_key_of(secret_context.secret_bytes(), ctx)
    server = PublicMaskedContext(secret_context.public_bytes(), P.name)
    x = np.full(64, 1_800_000, dtype=np.int64)
    truth = np.arange(64, dtype=np.int64) * 12_345 + 1_000_000
    ops = masked.mask_operands(truth, P)
    c = 1 << 35
    data = _constant_c1_ciphertext(seal, sk, x, c)
    answer = craft.load(
        sealapi.Ciphertext(),
        ctx,
        server.unsafe_evaluate_unprotected(server.parse(data), ops.multiply, ops.add),
    )
    c1 = craft.residues(answer)[1, 0]
    p_coeffs = _centred([int(v) * pow(c, -1, primes[0]) for v in c1], primes[0])
    masks = _decode_masks(seal, p_coeffs, t)[:64]
    values = secret_context.decrypt(craft.save(answer))[:64]
    assert _recovered(values, masks, x, truth) == 1.0
    # ... and against the protected evaluation it reads nothing.
    answer = server.evaluate(server.parse(data), ops.multiply, ops.add)
    c1 = craft.residues(craft.load(sealapi.Ciphertext(), ctx, answer))[1, 0]
    scale = craft.level_modulus(primes, 4) // craft.level_modulus(primes, 2)
    masks = _decode_masks(
        seal, _centred([int(v) * scale * pow(c, -1, primes[0]) for v in c1], primes[0]), t
    )[:64]
    assert _recovered(secret_context.decrypt(answer)[:64], masks, x, truth) == 0.0


def test_constant_c1_over_grpc_learns_nothing(
    uwv: Any, seal: Any, secret_context: SecretMaskedContext
) -> None:
    stub, _budget, bsns, truth = uwv
    ctx, t, primes = seal
    sk = craft.secret_key_of(secret_context.secret_bytes(), ctx)
    digest = _upload(stub, secret_context.public_bytes())
    x = np.full(HOUSEHOLDS, 1_800_000, dtype=np.int64)
    c = 1 << 35
    result = _screen(stub, digest, bsns, _constant_c1_ciphertext(seal, sk, x, c))
    assert not result.HasField("error")
    answer = craft.load(sealapi.Ciphertext(), ctx, result.ciphertexts[0])
    c1 = craft.residues(answer)[1, 0]
    scale = craft.level_modulus(primes, 4) // craft.level_modulus(primes, 2)
    masks = _decode_masks(
        seal, _centred([int(v) * scale * pow(c, -1, primes[0]) for v in c1], primes[0]), t
    )
    values = secret_context.decrypt(result.ciphertexts[0])[:HOUSEHOLDS]
    # Decisions are still exact (the crafted ciphertext still encrypts x) ...
    assert ((values > 0) == (truth < x)).all()
    # ... and the masks read from c1 are noise: no total comes out.
    assert _recovered(values, masks[:HOUSEHOLDS], x, truth) < 0.01


@pytest.mark.parametrize("log2_delta", [63, 100, 120])
def test_inflated_noise_over_grpc_learns_nothing(
    uwv: Any, seal: Any, secret_context: SecretMaskedContext, log2_delta: int
) -> None:
    """c0 += 2**k: the answer's noise then holds 2**k·P. k = 63 is at the statistically hidden
    bound (noise 2**125), 100 and 120 beyond it (120: next to the decryption limit)."""
    stub, _budget, bsns, truth = uwv
    ctx, t, primes = seal
    sk = craft.secret_key_of(secret_context.secret_bytes(), ctx)
    digest = _upload(stub, secret_context.public_bytes())
    x = np.full(HOUSEHOLDS, 1_800_000, dtype=np.int64)
    ct = craft.load(sealapi.Ciphertext(), ctx, secret_context.encrypt(x))
    polys = craft.residues(ct)
    for i, q in enumerate(primes[:4]):
        polys[0, i, 0] = (int(polys[0, i, 0]) + (1 << log2_delta)) % q
    result = _screen(stub, digest, bsns, craft.raw_bytes(list(ct.parms_id()), False, polys))
    assert not result.HasField("error")
    answer = result.ciphertexts[0]
    w = craft.phase(ctx, sk, answer, primes)
    modulus = craft.level_modulus(primes, 2)
    delta_out = (1 << log2_delta) * modulus // craft.level_modulus(primes, 4)
    noise = _noise(w, t, modulus)
    masks = _decode_masks(seal, [(v + delta_out // 2) // max(delta_out, 1) for v in noise], t)
    values = secret_context.decrypt(answer)[:HOUSEHOLDS]
    assert _recovered(values, masks[:HOUSEHOLDS], x, truth) < 0.01


def test_ckks_contexts_and_ciphertexts_are_refused_before_any_charge(
    uwv: Any, secret_context: SecretMaskedContext
) -> None:
    """Complex thresholds need a CKKS context: there is no masked CKKS set any more."""
    stub, budget, bsns, _ = uwv
    ckks = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 40, 60])
    ckks.global_scale = 2.0**40
    public = ckks.serialize(save_public_key=True, save_secret_key=False)
    for name in ("ckks-masked-n8192", P.name):
        with pytest.raises(grpc.RpcError) as info:
            _upload(stub, public, name)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    digest = _upload(stub, secret_context.public_bytes())
    vector = ts.ckks_vector(ckks, [1.0] * 4)
    result = _screen(stub, digest, bsns[:4], vector.serialize())
    assert result.error.code == pb.ERROR_CODE_INVALID_CIPHERTEXT
    assert _charged(budget, bsns) == 0


@pytest.mark.parametrize("change", ["a-zero", "a-constant", "a-own-random", "all-zero"])
def test_degenerate_public_keys_are_refused(uwv: Any, seal: Any, change: str) -> None:
    stub, *_ = uwv
    ctx, _, _primes = seal
    keygen = sealapi.KeyGenerator(ctx)
    pk = sealapi.PublicKey()
    keygen.create_public_key(pk)  # SEAL's own key: its a is SEAL's random choice, not the CRS
    polys = craft.residues(pk.data())
    if change == "a-zero":
        polys[1] = 0
    elif change == "a-constant":
        polys[1] = 7
    elif change == "all-zero":
        polys[:] = 0
    data = craft.raw_bytes(list(ctx.key_parms_id()), True, polys)
    with pytest.raises(grpc.RpcError) as info:
        _upload(stub, data)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "common polynomial" in info.value.details()  # type: ignore[attr-defined]


def test_the_common_a_is_accepted_with_any_p0(uwv: Any, seal: Any) -> None:
    """p0 is SVB's to choose (UWV cannot check it without s) and opens nothing: accepted."""
    stub, *_ = uwv
    ctx, _, _primes = seal
    polys = np.zeros((2, 5, P.slots), dtype=np.uint64)
    polys[0] = 3
    polys[1] = crs_a(P, DEFAULT_CRS_SEED)
    _upload(stub, craft.raw_bytes(list(ctx.key_parms_id()), True, polys))


@pytest.mark.parametrize(
    "shape", ["scale", "size-3", "low-level", "ntt", "foreign-params", "big-coefficient"]
)
def test_malformed_ciphertexts_are_refused_before_any_charge(
    uwv: Any, seal: Any, secret_context: SecretMaskedContext, shape: str
) -> None:
    stub, budget, bsns, _ = uwv
    ctx, _t, primes = seal
    digest = _upload(stub, secret_context.public_bytes())
    ct = craft.load(sealapi.Ciphertext(), ctx, secret_context.encrypt(np.arange(4, dtype=np.int64)))
    ev = sealapi.Evaluator(ctx)
    polys = craft.residues(ct)
    parms = list(ct.parms_id())
    if shape == "scale":
        data = craft.raw_bytes(parms, False, polys, scale=2.0**40)
    elif shape == "size-3":
        data = craft.raw_bytes(parms, False, np.concatenate([polys, polys[:1]]))
    elif shape == "low-level":
        ev.mod_switch_to_next_inplace(ct)
        data = craft.save(ct)
    elif shape == "ntt":
        data = craft.raw_bytes(parms, True, polys)
    elif shape == "foreign-params":
        other, _, _ = craft.bfv_context(8192, [60, 60, 60, 38], 56)
        kg = sealapi.KeyGenerator(other)
        small = sealapi.Ciphertext()
        sealapi.Encryptor(other, kg.secret_key()).encrypt_symmetric(sealapi.Plaintext("5"), small)
        data = craft.save(small)
    else:
        polys[1, 0, 5] = primes[0] + 1
        data = craft.raw_bytes(parms, False, polys)
    result = _screen(stub, digest, bsns[:4], data)
    assert result.error.code == pb.ERROR_CODE_INVALID_CIPHERTEXT, result
    assert _charged(budget, bsns) == 0


def test_inflated_noise_recovers_every_total_without_protection(
    seal: Any, secret_context: SecretMaskedContext
) -> None:
    """The noise attack is real: without flooding and switching, 2**100·P is read exactly."""
    ctx, t, primes = seal
    sk = craft.secret_key_of(secret_context.secret_bytes(), ctx)
    server = PublicMaskedContext(secret_context.public_bytes(), P.name)
    x = np.full(64, 1_800_000, dtype=np.int64)
    truth = np.arange(64, dtype=np.int64) * 12_345 + 1_000_000
    ops = masked.mask_operands(truth, P)
    ct = craft.load(sealapi.Ciphertext(), ctx, secret_context.encrypt(x))
    polys = craft.residues(ct)
    for i, q in enumerate(primes[:4]):
        polys[0, i, 0] = (int(polys[0, i, 0]) + (1 << 100)) % q
    data = craft.raw_bytes(list(ct.parms_id()), False, polys)
    answer = server.unsafe_evaluate_unprotected(server.parse(data), ops.multiply, ops.add)
    modulus = craft.level_modulus(primes, 4)
    noise = _noise(craft.phase(ctx, sk, answer, primes), t, modulus)
    masks = _decode_masks(seal, [(v + (1 << 99)) >> 100 for v in noise], t)[:64]
    assert _recovered(secret_context.decrypt(answer)[:64], masks, x, truth) == 1.0
