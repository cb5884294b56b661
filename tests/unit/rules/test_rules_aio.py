"""The shipped AIO rule: its own cases, the decision formula, the RegelRecht-style version."""

from __future__ import annotations

from datetime import date

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from rules_testkit import AIO, RR_BINDING, RR_DOC, one_person_month_each

from shared.models import NormCategory, Period, SourceKind
from shared.rules.batch import Batch
from shared.rules.check import check
from shared.rules.evaluate import evaluate
from shared.rules.parse import parse_file
from shared.rules.testcases import run_tests
from shared.rules.verify import verify_file

# art. 22 Participatiewet, text per date (single, couple), euro cents
NORMS = {
    date(2024, 1, 1): (142576, 193232),
    date(2024, 7, 1): (145685, 197664),
    date(2025, 1, 1): (150107, 205348),
    date(2025, 7, 1): (153021, 209498),
    date(2026, 1, 1): (156469, 214416),
    date(2026, 7, 1): (158734, 217610),
}
AIO_RULE = check(parse_file(AIO))


def norm(category: NormCategory, period: Period) -> int:
    end = period.end.last_day()
    start = max(d for d in NORMS if d <= end)
    return NORMS[start][category is NormCategory.COUPLE]


def test_bundled_cases_pass() -> None:
    outcomes = run_tests(AIO_RULE)
    assert len(outcomes) >= 7
    assert all(o.passed for o in outcomes), [o.problems for o in outcomes if not o.passed]


def test_aio_is_accepted_by_the_verifier() -> None:
    report = verify_file(AIO)
    assert report.accepted, report.to_text()
    assert report.decision == "heeft_recht_op_aio"
    assert set(report.intermediate_outputs) == {
        "vrijlating_arbeid",
        "inkomen",
        "aantal_a",
        "norm_per_persoon_kostendeler",
        "norm",
        "drempel",
    }
    assert report.decision_legal_basis == "art. 47a Participatiewet"
    assert {d.legal_basis for d in report.definitions} >= {
        "art. 22 onderdeel a Participatiewet",
        "art. 22 onderdelen b en c Participatiewet",
    }


def random_batch(seed: int, n: int, period: Period) -> Batch:
    rng = np.random.default_rng(seed)
    gross = {k: rng.integers(-10_000, 700_000, n) for k in SourceKind}
    tax = {k: rng.integers(0, 100_000, n) for k in SourceKind}
    return one_person_month_each(
        Batch.from_columns(
            period=period,
            gross_cents=gross,
            tax_cents=tax,
            is_couple=rng.random(n) < 0.3,
            known_income_cents=rng.integers(0, 250_000, n),
        )
    )


CAPS = {date(2024, 1, 1): 26400, date(2024, 7, 1): 26900, date(2025, 1, 1): 27300}
CAPS |= {date(2025, 7, 1): 27800, date(2026, 1, 1): 28500, date(2026, 7, 1): 28500}


def exemption(net_wage: np.ndarray, period: Period) -> np.ndarray:
    """art. 31 lid 2 onder n on one person-month: min(cap, floor(25% of net wage)), >= 0."""
    end = period.end.last_day()
    cap = CAPS[max(d for d in CAPS if d <= end)]
    return np.minimum(cap, np.maximum(0, (25 * net_wage) // 100))


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    period=st.sampled_from(
        [
            "2024-01..2024-06",
            "2024-07..2024-12",
            "2025-01",
            "2024-11..2025-04",
            "2025-07..2025-12",
            "2026-01..2026-06",
            "2025-01..2026-12",
        ]
    ),
)
def test_decision_is_exactly_s_below_n_times_norm_minus_k(seed: int, period: str) -> None:
    p = Period.parse(period)
    batch = random_batch(seed, 500, p)
    wage = batch.gross_cents[SourceKind.WAGE] - batch.tax_cents[SourceKind.WAGE]
    s = sum(batch.gross_cents[k] - batch.tax_cents[k] for k in SourceKind) - exemption(wage, p)
    n_single, n_couple = norm(NormCategory.SINGLE, p), norm(NormCategory.COUPLE, p)
    threshold = p.months * (
        np.where(batch.is_couple, n_couple, n_single) - batch.known_income_cents
    )
    result = evaluate(AIO_RULE, batch)
    assert result.decision is not None
    assert (result.decision == (s < threshold)).all()


def test_regelrecht_style_rule_loads_unchanged_with_binding() -> None:
    rule = check(parse_file(RR_DOC, binding=RR_BINDING))
    assert rule.decision == "heeft_recht"
    inkomen = rule.rule.input("inkomen")
    assert inkomen is not None and inkomen.declared_source == (
        "regulation=wet_inkomstenbelasting output=inkomen"
    )
    # definitions without their own legal basis take the article they stand in
    d = rule.rule.definition("norm_alleenstaand")
    assert d is not None and d.legal_basis is not None
    assert d.legal_basis.cite() == "art. 47a Participatiewet"
    assert all(o.passed for o in run_tests(rule))
    report = verify_file(RR_DOC, binding=RR_BINDING)
    assert report.accepted, report.to_text()


def test_regelrecht_rule_decides_like_the_aio_rule_in_2025() -> None:  # see test_rules_one_law
    rr = check(parse_file(RR_DOC, binding=RR_BINDING))
    p = Period.parse("2025-01..2025-06")
    batch = random_batch(7, 2000, p)
    a, b = evaluate(AIO_RULE, batch).decision, evaluate(rr, batch).decision
    assert a is not None and b is not None
    assert (a == b).all()


def test_regelrecht_rule_without_binding_is_refused_with_reason() -> None:
    report = verify_file(RR_DOC)
    assert not report.accepted
    unbound = [f for f in report.findings if "binding" in f.expected]
    assert unbound and "neither a UWV polis attribute nor a value SVB sends" in unbound[0].message


def test_binding_for_another_rule_is_refused(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    other = tmp_path / "other.binding.yaml"
    other.write_text(
        RR_BINDING.read_text().replace(
            "binding_for: participatiewet/aio", "binding_for: andere/regel"
        )
    )
    report = verify_file(RR_DOC, binding=other)
    assert not report.accepted
    assert "andere/regel" in report.findings[0].message
