"""Input sources in our own form: ``{polis: ATTRIBUTE, kinds, sum_over}`` or ``{query: FIELD}``
(used in native documents and in binding files)."""

from __future__ import annotations

from typing import Any

from shared.models import SourceKind
from shared.rules._syntax import as_list, fail, join, name_of, no_extra
from shared.rules.model import Aggregation, PolisSource, QueryField, QuerySource, Source


def parse_source(raw: dict[str, Any], path: str) -> Source:
    """Parse our source form: ``{polis: ATTRIBUTE, kinds: [...], sum_over: [...]}`` or
    ``{query: FIELD}``."""
    if "query" in raw:
        no_extra(raw, {"query"}, path, "a query source")
        try:
            return QuerySource(field=QueryField(raw["query"]))
        except ValueError:
            raise fail(
                join(path, "query"),
                f"SVB does not send a value {raw['query']!r}",
                "one of " + ", ".join(f.value for f in QueryField),
            ) from None
    no_extra(raw, {"polis", "kinds", "sum_over"}, path, "a polis source")
    attribute = name_of(raw.get("polis"), join(path, "polis"), "polis attribute")
    kinds_raw = raw.get("kinds", [k.value for k in SourceKind])
    kpath = join(path, "kinds")
    kinds: list[SourceKind] = []
    for i, k in enumerate(as_list(kinds_raw, kpath, "kinds")):
        try:
            kinds.append(SourceKind(k))
        except ValueError:
            raise fail(
                join(kpath, i),
                f"{k!r} is not a source kind",
                "one of " + ", ".join(s.value for s in SourceKind),
            ) from None
    if not kinds or len(set(kinds)) != len(kinds):
        raise fail(kpath, "kinds is empty or lists a kind twice", "each source kind at most once")
    opath = join(path, "sum_over")
    over: list[Aggregation] = []
    for i, o in enumerate(as_list(raw.get("sum_over", ["members", "months"]), opath, "sum_over")):
        try:
            over.append(Aggregation(o))
        except ValueError:
            raise fail(join(opath, i), f"cannot sum over {o!r}", "members, months") from None
    return PolisSource(attribute=attribute, kinds=tuple(kinds), sum_over=tuple(sorted(set(over))))


def describe_foreign(raw: object) -> str:
    if isinstance(raw, dict):
        parts = [f"{k}={raw[k]}" for k in ("regulation", "output") if k in raw]
        if parts:
            return " ".join(parts)
    return str(raw)[:200]


# --- expressions ----------------------------------------------------------------------
