"""A dishonest SVB against a real server: each attack of issue 9, with messages made by hand.

Every test asserts what the attacker can learn about the victim: at most one answered
evaluation per batch, at most :data:`LIMIT` per calendar year over all batches, modes and
periods, nothing for a refused or malformed message, and nothing new for a replay. What one
answered evaluation carries in bits, per mode, is measured by ``python -m shared.he.leakage``
(section "yearly bound"); these tests pin the number of answers that bound multiplies.
"""

from __future__ import annotations

import os
import secrets

import numpy as np
import pytest

from shared._proto.eligibility.v2 import eligibility_pb2 as pb
from shared._proto.eligibility.v2 import enclave_pb2 as epb
from shared.he.backend import SecretBfvContext, SecretMaskedContext
from shared.he.strict import decrypt_decisions, encrypt_thresholds
from tests.attacks.conftest import (
    BYSTANDERS,
    LIMIT,
    VICTIM,
    VICTIM_INCOME,
    Uwv,
    chunk_bytes,
    field_bytes,
    header_bytes,
    masked_ct,
    results,
    varint,
)

pytestmark = pytest.mark.attack


def _answered_slots(result: pb.ChunkResult, households: int) -> set[int]:
    refused = {d.slot for d in result.slot_errors}
    return set(range(households)) - refused if not result.HasField("error") else set()


def test_a_replayed_chunk_id_with_other_content_is_refused_and_logged(
    uwv: Uwv, secret_context: SecretMaskedContext
) -> None:
    """The old attack: charge chunk 0 with a stranger, re-send chunk 0 with the victim and a
    moving threshold. Now every re-send with other households is refused, charged nothing,
    and the log says so; a re-send with the same households gets the first answer back."""
    first = uwv.screen(
        [
            header_bytes(uwv, "probe"),
            chunk_bytes(0, [1], [BYSTANDERS[0]], [masked_ct(secret_context, [0])]),
        ]
    )
    answer = results(first)[0].ciphertexts[0]
    low, high = 0, 1_000_000
    messages = [header_bytes(uwv, "probe")]
    for _ in range(48):
        guess = (low + high) // 2
        messages.append(chunk_bytes(0, [1], [VICTIM], [masked_ct(secret_context, [guess])]))
    replies = results(uwv.screen(messages))
    assert len(replies) == 48
    assert all(r.error.code == pb.ERROR_CODE_REPLAY_CONFLICT for r in replies)
    assert uwv.used(VICTIM) == 0
    # the same households with another threshold: the stored answer, byte for byte
    again = results(
        uwv.screen(
            [
                header_bytes(uwv, "probe"),
                chunk_bytes(0, [1], [BYSTANDERS[0]], [masked_ct(secret_context, [999_999])]),
            ]
        )
    )
    assert again[0].ciphertexts[0] == answer
    assert uwv.used(BYSTANDERS[0]) == 1
    # the batch id is bound to its header too: another period under the same id is refused
    with pytest.raises(Exception, match="another header"):
        uwv.screen([header_bytes(uwv, "probe", period="2025-02..2025-12")])
    entries = uwv.entries()
    assert sum(e.budget.bsns_charged for e in entries) == 1  # exact: one charge in all
    assert sum(e.replays_refused or 0 for e in entries) == 49
    assert entries[1].resumes == 0  # the second stream's entry names the first


def test_many_copies_of_one_person_in_one_chunk_are_refused_uncharged(
    uwv: Uwv, secret_context: SecretMaskedContext
) -> None:
    """4,096 copies of the victim on a grid of thresholds (one masked chunk) used to give the
    income to 0.5 %. Now a chunk that names a person twice is invalid as a whole: refused
    before anything is charged or evaluated (and the budget refuses later copies anyway)."""
    n = 4096
    grid = [int(x) for x in np.linspace(0, 400_000, n)]
    replies = results(
        uwv.screen(
            [
                header_bytes(uwv, "copies"),
                chunk_bytes(0, [1] * n, [VICTIM] * n, [masked_ct(secret_context, grid)]),
                # and as members of different households of one chunk
                chunk_bytes(
                    1, [2, 1], [BYSTANDERS[0], VICTIM, VICTIM], [masked_ct(secret_context, [1, 2])]
                ),
            ]
        )
    )
    assert [r.error.code for r in replies] == [
        pb.ERROR_CODE_INVALID_CHUNK,
        pb.ERROR_CODE_INVALID_CHUNK,
    ]
    assert all(not r.ciphertexts for r in replies)
    assert uwv.used(VICTIM) == 0 and uwv.used(BYSTANDERS[0]) == 0
    assert uwv.entries() == []


def test_copies_across_chunks_and_streams_of_one_batch_are_refused(
    uwv: Uwv, secret_context: SecretMaskedContext
) -> None:
    messages = [header_bytes(uwv, "spread")]
    for i in range(20):
        ct = masked_ct(secret_context, [50_000 * i])
        messages.append(chunk_bytes(i, [2], [BYSTANDERS[i], VICTIM], [ct]))
    replies = results(uwv.screen(messages))
    answered = [r.index for r in replies if _answered_slots(r, 1)]
    assert answered == [0]
    # a "resumed" stream of the same batch, new chunk ids: still the same batch
    more = results(
        uwv.screen(
            [
                header_bytes(uwv, "spread"),
                chunk_bytes(20, [1], [VICTIM], [masked_ct(secret_context, [1])]),
            ]
        )
    )
    assert more[0].slot_errors[0].code == pb.ERROR_CODE_DUPLICATE_BSN
    assert uwv.used(VICTIM) == 1


def test_client_chosen_income_weights_are_refused(
    uwv: Uwv, secret_context: SecretMaskedContext
) -> None:
    """Weights "tax withheld only" used to return another attribute of UWV's data. Field 7
    is gone; a header that carries it is refused before anything is charged, and an
    unapproved rule digest is refused the same way."""
    tax_only = b"".join(
        field_bytes(7, field_bytes(1, kind.encode()) + bytes([16, 0, 24, 2]))
        for kind in ("wage", "benefit", "pension", "other")
    )
    chunk = chunk_bytes(0, [1], [VICTIM], [masked_ct(secret_context, [100_000])])
    with pytest.raises(Exception, match="field 7"):
        uwv.screen([header_bytes(uwv, "weights", extra=tax_only), chunk])
    with pytest.raises(Exception, match="may not be computed here"):
        uwv.screen([header_bytes(uwv, "rule", rule="cd" * 32), chunk])
    assert uwv.used(VICTIM) == 0
    assert uwv.entries() == []
    # what UWV does compute is the approved rule's net income: a threshold just above and
    # just below the victim's net income decides accordingly
    replies = results(
        uwv.screen(
            [
                header_bytes(uwv, "net"),
                chunk_bytes(
                    0,
                    [1, 1],
                    [VICTIM, BYSTANDERS[0]],
                    [masked_ct(secret_context, [VICTIM_INCOME + 1, 0])],
                ),
            ]
        )
    )
    assert secret_context.decrypt(replies[0].ciphertexts[0])[0] > 0


def test_garbage_chunks_cost_nobody_any_budget(
    uwv: Uwv, secret_context: SecretMaskedContext
) -> None:
    """Twelve chunks of garbage used to spend a person's yearly budget. Now nothing that does
    not parse for the batch's context is charged, logged as a charge, or answered."""
    good = masked_ct(secret_context, [100_000])
    other_key = SecretMaskedContext.generate(secret_context.params).encrypt(
        np.zeros(1, dtype=np.int64)
    )
    garbage = [
        os.urandom(1000),
        good[: len(good) // 2],
        good + b"\0" * 16,
        b"",
        other_key,  # parses only by accident under another context; must not charge
        good[:-8],  # truncated (a BFV ciphertext always holds every slot: no slot count)
    ]
    messages = [header_bytes(uwv, "garbage")]
    for i in range(12):
        messages.append(chunk_bytes(i, [1], [VICTIM], [garbage[i % len(garbage)]]))
    messages.append(chunk_bytes(12, [1], [VICTIM], [good, good]))  # two ciphertexts
    replies = results(uwv.screen(messages))
    refused = [r for r in replies if r.HasField("error")]
    answered = [r for r in replies if not r.HasField("error")]
    assert uwv.used(VICTIM) <= 1
    # a ciphertext under another key of the same parameters is indistinguishable from SVB's:
    # at most that one is evaluated (and charged); every other chunk is refused unevaluated
    assert len(answered) <= 2 and len(refused) >= 11
    assert {r.error.code for r in refused} <= {pb.ERROR_CODE_INVALID_CIPHERTEXT}
    charged_entries = [e for e in uwv.entries() if e.budget.bsns_charged]
    assert sum(e.budget.bsns_charged for e in charged_entries) == uwv.used(VICTIM)
    # header-only and garbage-only streams append nothing
    size = len(uwv.entries())
    uwv.screen([header_bytes(uwv, "empty")])
    uwv.screen([header_bytes(uwv, "junk"), chunk_bytes(0, [1], [VICTIM], [os.urandom(64)])])
    assert len(uwv.entries()) == size


def _masked_probe(
    uwv: Uwv, secret: SecretMaskedContext, batch: str, period: str, t: int
) -> tuple[bool, bool]:
    """(answered, eligible) for the victim with monthly threshold ``t``."""
    replies = results(
        uwv.screen(
            [
                header_bytes(uwv, batch, period=period),
                chunk_bytes(
                    0,
                    [1, 1],
                    [VICTIM, BYSTANDERS[secrets.randbelow(300) + 50]],
                    [masked_ct(secret, [t, 0])],
                ),
            ]
        )
    )
    r = replies[0]
    answered = 0 in _answered_slots(r, 2)
    return answered, answered and bool(secret.decrypt(r.ciphertexts[0])[0] > 0)


def test_binary_search_across_batches_modes_and_periods_stops_at_the_budget(
    uwv: Uwv, secret_context: SecretMaskedContext, strict_secret_small: SecretBfvContext
) -> None:
    """Twenty questions about one income, spread over new batch ids, all three modes and
    shifted periods: the victim is answered :data:`LIMIT` times in 2025, never more."""
    strict = strict_secret_small
    strict_ctx = uwv.screening.contexts.accept_checked(
        strict.params.name, strict.public_bytes(), "svb"
    )  # as the key check would store it (test_strict_key_check.py tests the check itself)
    run = uwv.channel.unary_unary(
        "/eligibility.v2.ComputeToDataService/Run", response_deserializer=epb.RunResponse.FromString
    )
    periods = ["2025-01..2025-12", "2025-02..2025-12", "2025-03..2025-11", "2024-12..2025-01"]
    low, high = 0, 1_000_000
    answered = 0
    for q in range(20):
        guess = (low + high) // 2
        period = periods[q % len(periods)]
        months = _months(period)
        kind = ("masked", "strict", "enclave")[q % 3]
        if kind == "masked":
            ok, eligible = _masked_probe(uwv, secret_context, f"m{q}", period, guess)
        elif kind == "strict":
            cts = encrypt_thresholds(strict, np.array([guess * months, 0], np.int64), months)
            replies = results(
                uwv.screen(
                    [
                        header_bytes(
                            uwv, f"s{q}", mode=pb.MODE_STRICT, period=period, context=strict_ctx
                        ),
                        chunk_bytes(0, [1, 1], [VICTIM, BYSTANDERS[200 + q]], cts),
                    ]
                )
            )
            ok = 0 in _answered_slots(replies[0], 2)
            eligible = bool(decrypt_decisions(strict, replies[0].ciphertexts[0], 2).eligible[0])
        else:
            # the enclave's threshold is norm − known income: SVB moves its known income
            norm = 150_107
            known = max(0, norm - guess)
            response = run(
                epb.RunRequest(
                    run_id=f"e{q}",
                    rule_digest=uwv.rule_digest,
                    period=period,
                    salt=os.urandom(32),
                    member_counts_le64=np.array([1, 1], "<i8").tobytes(),
                    member_bsns_le64=np.array([VICTIM, BYSTANDERS[250 + q]], "<i8").tobytes(),
                    is_couple_u8=bytes(2),
                    known_income_cents_le64=np.array([known, 0], "<i8").tobytes(),
                ).SerializeToString()
            )
            outcome = np.frombuffer(response.outcomes, np.uint8)
            ok = bool(outcome[0] != 2)
            eligible = bool(outcome[0] == 1)
        if not ok:
            continue
        answered += 1
        low, high = (low, guess) if eligible else (guess, high)
    assert answered == LIMIT
    assert uwv.used(VICTIM, 2025) == LIMIT
    assert high - low >= 1_000_000 // 2**LIMIT  # the one-bit answers narrowed it this far


def _months(period: str) -> int:
    a, b = period.split("..")
    return (int(b[:4]) - int(a[:4])) * 12 + int(b[5:]) - int(a[5:]) + 1


def _run_request(uwv: Uwv, run_id: str, bsns: list[int], known: list[int]) -> epb.RunRequest:
    n = len(bsns)
    return epb.RunRequest(
        run_id=run_id,
        rule_digest=uwv.rule_digest,
        period="2025-01..2025-12",
        salt=os.urandom(32),
        member_counts_le64=np.ones(n, "<i8").tobytes(),
        member_bsns_le64=np.array(bsns, "<i8").tobytes(),
        is_couple_u8=bytes(n),
        known_income_cents_le64=np.array(known, "<i8").tobytes(),
    )


def test_an_enclave_sweep_of_known_income_is_one_answer_per_run_and_budget_per_year(
    uwv: Uwv,
) -> None:
    """One run of 2,000 households, each the victim with another known income, used to give
    a month's income to 12 cents. Now such a run is refused whole (nothing charged), the
    sweep spread over runs is stopped by the budget, and a re-used run id gets the stored
    outcome (same content) or a refusal (other content)."""
    run = uwv.channel.unary_unary(
        "/eligibility.v2.ComputeToDataService/Run", response_deserializer=epb.RunResponse.FromString
    )
    n = 2000
    sweep = _run_request(
        uwv, "sweep", [VICTIM] * n, np.linspace(0, 150_000, n).astype(int).tolist()
    )
    with pytest.raises(Exception, match="also in household"):
        run(sweep.SerializeToString())
    assert uwv.used(VICTIM) == 0
    answered = 0
    for q in range(8):  # one victim per run, the known income moving
        request = _run_request(uwv, f"sweep-{q}", [VICTIM, BYSTANDERS[q]], [20_000 * q, 0])
        response = run(request.SerializeToString())
        outcomes = np.frombuffer(response.outcomes, np.uint8)
        assert outcomes[1] in (0, 1)  # the bystander is always answered
        answered += int(outcomes[0] != 2)
        if q == 0:
            # the same run id and content: the stored outcome and statement, byte for byte
            again = run(request.SerializeToString())
            assert again.outcomes == response.outcomes and again.statement == response.statement
            # the same run id with other content: refused and logged
            request.known_income_cents_le64 = np.array([1, 0], "<i8").tobytes()
            with pytest.raises(Exception, match=r"another header|other content"):
                run(request.SerializeToString())
    assert answered == LIMIT and uwv.used(VICTIM) == LIMIT
    entries = uwv.entries()
    assert sum(e.budget.bsns_charged for e in entries) == LIMIT + 8
    assert sum(e.replays_refused or 0 for e in entries) == 1


def test_varint_helper_matches_protobuf() -> None:
    for n in (0, 1, 127, 128, 300, 2**21):
        assert pb.ChunkResult(index=n).SerializeToString() == (
            b"" if n == 0 else bytes([8]) + varint(n)
        )
