"""A dishonest SVB against strict mode's key check (issue 14), over a real gRPC server.

Relinearisation keys are crafted by hand with ``tenseal.sealapi`` (:mod:`craft`), outside the
project's client: ``b_i += F_i·Z`` makes a relinearised product decrypt to the bit plus about
``c2·Z``, a function of what UWV multiplied. The key check (cut-and-choose over K seeded key
sets) catches a malformed set unless UWV's challenge lands on it: probability (K−1)/K.
The challenge is forced through the registry's ``key_check_choose`` seam where a test needs
a known index; the production default is ``secrets.randbelow``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import craft
import grpc
import numpy as np
import pytest
import tenseal.sealapi as sealapi

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared._proto.eligibility.v2 import eligibility_pb2_grpc as pb_grpc
from shared.he import strict
from shared.he.backend import PublicBfvContext
from shared.he.keysets import StrictKeyFamily
from shared.he.params import STRICT_BFV_N8192 as S
from shared.models import Period
from shared.rules import digest as rule_digest_of
from shared.rules import parse_file
from tests.conftest import AIO_RULE, POLIS_COLUMNS, bsn_from, write_csv
from uwv_server.budget import SqliteBudget
from uwv_server.contexts import ContextRegistry
from uwv_server.store import import_polis

pytestmark = pytest.mark.attack

K = 3
PERIOD = Period.parse("2025-01..2025-12")
HOUSEHOLDS = 32
CALLER = "unauthenticated (insecure loopback)"


@pytest.fixture(scope="module")
def seal() -> tuple[Any, list[int]]:
    parms = sealapi.EncryptionParameters(sealapi.SCHEME_TYPE.BFV)
    parms.set_poly_modulus_degree(S.poly_modulus_degree)
    parms.set_coeff_modulus(
        sealapi.CoeffModulus.Create(S.poly_modulus_degree, list(S.coeff_mod_bit_sizes))
    )
    parms.set_plain_modulus(sealapi.Modulus(S.plain_modulus))
    context = sealapi.SEALContext(parms, True, sealapi.SEC_LEVEL_TYPE.TC128)
    return context, [int(m.value()) for m in parms.coeff_modulus()]


@pytest.fixture(scope="module")
def svb() -> StrictKeyFamily:
    return StrictKeyFamily(S, bytes(range(1, 33)))


@pytest.fixture(scope="module")
def honest(svb: StrictKeyFamily) -> list[bytes]:
    return svb.public_contexts(K)


@pytest.fixture(scope="module")
def malformed(svb: StrictKeyFamily, seal: tuple[Any, list[int]]) -> bytes:
    """Set 1's context with ``Z = 1`` added through every relinearisation component."""
    context, primes = seal
    return craft.malformed_relin(context, svb.key_set(1).public_bytes(), primes, 1)


class Uwv:
    def __init__(self, tmp: Path, start_server: Any, channel_to: Any, chosen: int) -> None:
        store = tmp / f"store-{chosen}"  # one audit log per server
        if not store.exists():
            rows = [
                [bsn_from(i), 1, "pension", f"2025-{m:02d}", 100_000 + 1_000 * i, 100]
                for i in range(HOUSEHOLDS)
                for m in range(1, 13)
            ]
            import_polis(write_csv(tmp / f"p-{chosen}.csv", POLIS_COLUMNS, rows), store)
        self.budget = SqliteBudget(store / "budget.sqlite", limit=100)
        self.contexts = ContextRegistry(
            tmp / f"contexts-{chosen}", strict_key_sets=K, key_check_choose=lambda k: chosen
        )
        self.server = start_server(store, budget=self.budget, contexts=self.contexts)
        self.stub = pb_grpc.ScreeningServiceStub(channel_to(self.server.target))
        self.bsns = [int(bsn_from(i)) for i in range(HOUSEHOLDS)]

    def propose(self, contexts: list[bytes]) -> pb.ProposeKeySetsResponse:
        messages = [pb.ProposeKeySetsRequest(parameter_set=S.name, context=c) for c in contexts]
        reply: pb.ProposeKeySetsResponse = self.stub.ProposeKeySets(iter(messages))
        return reply

    def open(self, proposal: str, seeds: list[bytes]) -> str:
        reply = self.stub.OpenKeySets(pb.OpenKeySetsRequest(proposal_id=proposal, seeds=seeds))
        return str(reply.context_sha256)

    def key_check_entries(self) -> list[Any]:
        log = self.server.service.audit.service.log
        return [e for e in log.entries(0, log.size) if e.key_check is not None]

    def screen(self, digest: str, ciphertexts: list[bytes]) -> pb.ChunkResult:
        header = pb.BatchHeader(
            batch_id="attack-relin",
            context_sha256=digest,
            mode=pb.MODE_STRICT,
            period=str(PERIOD),
            rule_digest=rule_digest_of(parse_file(AIO_RULE)),
        )
        chunk = pb.Chunk(
            index=0, member_counts=[1] * HOUSEHOLDS, member_bsns=self.bsns, ciphertexts=ciphertexts
        )
        requests = [pb.ScreenRequest(header=header), pb.ScreenRequest(chunk=chunk)]
        result: pb.ChunkResult = next(iter(self.stub.Screen(iter(requests)))).result
        return result


def _code(info: Any) -> Any:
    return info.value.code()


def test_the_malformed_key_leaks_what_the_server_multiplied(
    svb: StrictKeyFamily, malformed: bytes
) -> None:
    """Why the check exists. The comparison tree alone, relinearised with the malformed key,
    decrypts to garbage that is a deterministic function of UWV's totals (the honest key gives
    the bits). The server's validity check happens to randomise it too (next test), but that
    is not what a key may rely on."""
    secret = svb.key_set(1)
    bad = PublicBfvContext(malformed, S.name)
    good = PublicBfvContext(secret.public_bytes(), S.name)
    x = np.full(HOUSEHOLDS, 150_000 * 12, dtype=np.int64)
    cts = strict.encrypt_thresholds(secret, x, 12)

    def tree(ctx: PublicBfvContext, monthly: int) -> Any:
        leaves = [ctx.load(c, HOUSEHOLDS) for c in cts]
        per = (1 << S.digit_bits) - 1
        digits = [leaves[i * per : (i + 1) * per] for i in range(S.digits)]
        totals = strict.encode_totals(np.full(HOUSEHOLDS, monthly * 12, dtype=np.int64))
        root = strict._tree(digits, strict._digits(totals, S), need_eq=False)
        assert root.gt is not None
        return secret.decrypt(root.gt.serialize())

    assert set(tree(good, 100_000).tolist()) == {1} and set(tree(good, 200_000).tolist()) == {0}
    low, high = tree(bad, 100_000), tree(bad, 200_000)
    assert np.array_equal(low, tree(bad, 100_000))  # deterministic in UWV's data
    assert not np.array_equal(low, high)  # and it differs with UWV's totals
    assert np.isin(low, [0, 1]).mean() < 0.1


def test_a_malformed_set_among_the_opened_ones_is_caught(
    tmp_path: Path,
    start_server: Any,
    channel_to: Any,
    svb: StrictKeyFamily,
    honest: list[bytes],
    malformed: bytes,
) -> None:
    """Every challenge UWV can draw: the malformed set 1 is caught for K−1 of the K indices."""
    uploads = [honest[0], malformed, honest[2]]
    caught = 0
    for chosen in range(K):
        uwv = Uwv(tmp_path, start_server, channel_to, chosen)
        reply = uwv.propose(uploads)
        assert reply.chosen_index == chosen and reply.key_sets == K
        seeds = svb.openings(K, chosen)
        if chosen == 1:
            uwv.open(reply.proposal_id, seeds)  # undetected: see the next test for the cost
            assert [e.key_check for e in uwv.key_check_entries()] == ["accepted"]
            continue
        with pytest.raises(grpc.RpcError) as info:
            uwv.open(reply.proposal_id, seeds)
        assert _code(info) == grpc.StatusCode.PERMISSION_DENIED
        assert "cheat detected" in info.value.details()  # type: ignore[attr-defined]
        entries = uwv.key_check_entries()
        assert [(e.key_check, e.requester) for e in entries] == [("cheat-detected", CALLER)]
        assert entries[0].budget.bsns_charged == 0 and entries[0].household_count == 0
        assert not uwv.contexts.known(reply.context_sha256[chosen])
        caught += 1
    assert caught == K - 1  # (K−1)/K of the challenges catch it


def test_the_undetected_case_costs_a_charged_query_of_integrity_errors(
    tmp_path: Path,
    start_server: Any,
    channel_to: Any,
    svb: StrictKeyFamily,
    honest: list[bytes],
    malformed: bytes,
) -> None:
    """Challenge forced onto the malformed set (probability 1/K): it is accepted, and a batch
    under it is charged; every slot comes back as an integrity error (the validity check's
    random spread multiplies the relinearisation error of its own products), no decision and,
    measured here, nothing that depends on UWV's totals."""
    uwv = Uwv(tmp_path, start_server, channel_to, chosen=1)
    reply = uwv.propose([honest[0], malformed, honest[2]])
    digest = uwv.open(reply.proposal_id, svb.openings(K, 1))
    secret = svb.key_set(1)
    x = np.full(HOUSEHOLDS, 150_000 * 12, dtype=np.int64)
    result = uwv.screen(digest, strict.encrypt_thresholds(secret, x, 12))
    values = secret.decrypt(result.ciphertexts[0])[:HOUSEHOLDS]
    assert not np.isin(values, [0, 1]).any()
    assert sum(uwv.budget.used(b, 2025) for b in uwv.bsns) == HOUSEHOLDS


def test_a_revealed_seed_that_does_not_regenerate_its_upload_is_caught(
    tmp_path: Path, start_server: Any, channel_to: Any, svb: StrictKeyFamily, honest: list[bytes]
) -> None:
    uwv = Uwv(tmp_path, start_server, channel_to, chosen=0)
    reply = uwv.propose(honest)
    seeds = svb.openings(K, 0)
    seeds[2] = svb.seed(7)  # a seed, but not set 2's
    with pytest.raises(grpc.RpcError) as info:
        uwv.open(reply.proposal_id, seeds)
    assert "[2]" in info.value.details()  # type: ignore[attr-defined]
    assert [e.key_check for e in uwv.key_check_entries()] == ["cheat-detected"]
    # the caught proposal is closed: the right seeds now do not rescue it
    with pytest.raises(grpc.RpcError) as info:
        uwv.open(reply.proposal_id, svb.openings(K, 0))
    assert _code(info) == grpc.StatusCode.NOT_FOUND


def test_an_unopened_challenge_and_a_second_proposal_cannot_resample(
    tmp_path: Path, start_server: Any, channel_to: Any, svb: StrictKeyFamily, honest: list[bytes]
) -> None:
    uwv = Uwv(tmp_path, start_server, channel_to, chosen=2)
    first = uwv.propose(honest)
    again = uwv.propose(honest)  # the same commitment: the same challenge
    assert (again.proposal_id, again.chosen_index) == (first.proposal_id, first.chosen_index)
    other = [honest[1], honest[0], honest[2]]
    with pytest.raises(grpc.RpcError) as info:
        uwv.propose(other)  # a new draw while the first is unopened
    assert _code(info) == grpc.StatusCode.FAILED_PRECONDITION
    assert "recorded as failed" in info.value.details()  # type: ignore[attr-defined]
    assert [e.key_check for e in uwv.key_check_entries()] == ["abandoned"]
    with pytest.raises(grpc.RpcError):
        uwv.open(first.proposal_id, svb.openings(K, 2))  # the abandoned one is gone


@pytest.mark.parametrize("change", ["zero", "constant", "not-common", "first-part-zero"])
def test_degenerate_relin_keys_are_refused(
    tmp_path: Path,
    start_server: Any,
    channel_to: Any,
    svb: StrictKeyFamily,
    honest: list[bytes],
    seal: tuple[Any, list[int]],
    change: str,
) -> None:
    """In the chosen slot (opened sets are caught by regeneration anyway): random parts must
    be the common a_i, and nothing may be zero."""
    context, _ = seal
    parms_id, comps = craft.relin_components(context, honest[0])
    for polys in comps:
        if change == "zero":
            polys[:] = 0
        elif change == "constant":
            polys[1] = 5
        elif change == "not-common":
            polys[1] = np.roll(polys[1], 1, axis=-1)
        else:
            polys[0] = 0
    crafted = craft.with_relin_components(honest[0], parms_id, comps, (4, 3))
    uwv = Uwv(tmp_path, start_server, channel_to, chosen=0)
    reply = uwv.propose([crafted, honest[1], honest[2]])
    with pytest.raises(grpc.RpcError) as info:
        uwv.open(reply.proposal_id, svb.openings(K, 0))
    assert _code(info) == grpc.StatusCode.PERMISSION_DENIED
    details = info.value.details()  # type: ignore[attr-defined]
    assert "chosen key set 0 is malformed" in details and "relinearisation key" in details
    assert [e.key_check for e in uwv.key_check_entries()] == ["cheat-detected"]
