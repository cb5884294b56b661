"""YAML rule document (plus an optional binding) → :class:`shared.rules.model.Rule`.

Two layouts are accepted:

* our own: ``machine_readable`` at the top level, with ``definitions``, ``parameters``,
  ``input``, ``output`` and ``actions`` (optionally grouped under ``execution``), and
  ``tests`` at the top level;
* RegelRecht's: ``articles`` of which exactly one carries a ``machine_readable`` section.
  Inputs declared with a RegelRecht ``source`` (``regulation``/``output``) are mapped to our
  sources by a binding file (:mod:`shared.rules.binding`); definitions without a
  ``legal_basis`` take the article they stand in as their legal basis.

This step checks structure only (which keys, which operations, which operands); types,
references and cycles are :mod:`shared.rules.check`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Final

from shared.models import SourceKind
from shared.rules.binding import Binding, load_binding
from shared.rules.errors import RuleError, RuleFormatError
from shared.rules.load import load_yaml, read_text
from shared.rules.model import (
    ARITHMETIC,
    COMPARISONS,
    LOGICAL,
    Action,
    Aggregation,
    Apply,
    Case,
    Definition,
    DefinitionVersion,
    Expr,
    If,
    Input,
    LegalBasis,
    Lit,
    Operation,
    Output,
    PolisSource,
    PolisSums,
    QueryField,
    QuerySource,
    Ref,
    Rule,
    Source,
    TestCase,
    ValueType,
)

MAX_EXPRESSION_DEPTH: Final = 32
"""Operation trees deeper than this are refused: no honest rule needs them, and the
evaluator and the verifier recurse over them."""

SUPPORTED = ", ".join(op.value for op in Operation)

_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def parse_file(path: str | Path, *, binding: str | Path | None = None) -> Rule:
    """Read and parse a rule file (and its binding file, if any)."""
    file = str(path)
    bound = load_binding(binding) if binding is not None else None
    try:
        return parse_document(load_yaml(read_text(path), file=file), binding=bound, file=file)
    except RuleError as exc:
        raise exc.in_file(exc.file or file) from None


def parse_text(text: str, *, binding: Binding | None = None, file: str = "") -> Rule:
    """Parse a rule document given as YAML text."""
    return parse_document(load_yaml(text, file=file), binding=binding, file=file)


def parse_document(doc: dict[str, Any], *, binding: Binding | None = None, file: str = "") -> Rule:
    """Parse plain data (from ``yaml.safe_load``) into a :class:`Rule`."""
    try:
        return _Parser(binding).document(doc, file)
    except RuleError as exc:
        raise exc.in_file(exc.file or file) from None


def fail(path: str, message: str, expected: str = "") -> RuleFormatError:
    return RuleFormatError(message, path=path, expected=expected)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _mapping(value: object, path: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(path, f"{what} is a {_kind(value)}", "a mapping (key: value lines)")
    return value


def _list(value: object, path: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise fail(path, f"{what} is a {_kind(value)}", "a list (lines starting with '-')")
    return value


def _text(value: object, path: str, what: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise fail(path, f"{what} is {value!r}", "text")
    return str(value)


def _name(value: object, path: str, what: str) -> str:
    name = _text(value, path, what)
    if not set(name) <= _NAME_CHARS or name[0].isdigit():
        raise fail(path, f"{what} {name!r} is not a valid name", "lower-case letters, digits, '_'")
    return name


def _date(value: object, path: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise fail(path, f"{value!r} is not a date", "a date YYYY-MM-DD")


def _whole(value: object, path: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(path, f"{what} is {value!r}", "a whole number (amounts in euro cents)")
    return value


def _no_extra(m: dict[str, Any], allowed: set[str], path: str, what: str) -> None:
    extra = sorted(set(m) - allowed)
    if extra:
        raise fail(
            _join(path, extra[0]),
            f"{what} has an unknown key {extra[0]!r}",
            "one of " + ", ".join(sorted(allowed)),
        )


def _kind(value: object) -> str:
    if value is None:
        return "empty value"
    return {dict: "mapping", list: "list", str: "text", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


class _Parser:
    def __init__(self, binding: Binding | None) -> None:
        self.binding = binding
        self.article_basis: LegalBasis | None = None

    # --- document layout --------------------------------------------------------------

    def document(self, doc: dict[str, Any], file: str) -> Rule:
        rule_id = _text(doc.get("$id", doc.get("id", "")) or "unnamed", "$id", "$id")
        if self.binding is not None and self.binding.binding_for != rule_id:
            raise fail(
                "$id",
                f"the binding is for {self.binding.binding_for!r}, not for this rule",
                f"a binding with binding_for: {rule_id}",
            )
        name = _text(doc.get("name", rule_id), "name", "name")
        valid_from = _date(doc["valid_from"], "valid_from") if "valid_from" in doc else None
        if "machine_readable" in doc:
            mr_path = "machine_readable"
            mr = _mapping(doc["machine_readable"], mr_path, "machine_readable")
        elif "articles" in doc:
            mr_path, mr = self._article(doc)
        else:
            raise fail("", "the document has no machine_readable section", "machine_readable")
        _no_extra(
            mr,
            {"definitions", "execution", "parameters", "input", "output", "actions"}
            | {"untranslatables", "requires", "produces", "decision"},
            mr_path,
            "machine_readable",
        )
        ex, ex_path = mr, mr_path
        if "execution" in mr:
            ex_path = _join(mr_path, "execution")
            ex = _mapping(mr["execution"], ex_path, "execution")
            _no_extra(
                ex,
                {"parameters", "input", "output", "actions", "produces", "requires"},
                ex_path,
                "execution",
            )
        definitions = self.definitions(mr.get("definitions", {}), _join(mr_path, "definitions"))
        inputs = [
            self.input(item, _join(_join(ex_path, key), i))
            for key in ("parameters", "input")
            for i, item in enumerate(_list(ex.get(key, []), _join(ex_path, key), key))
        ]
        decision = self.binding.decision if self.binding and self.binding.decision else None
        if "decision" in mr:
            decision = _name(mr["decision"], _join(mr_path, "decision"), "decision")
        outputs = [
            self.output(item, _join(_join(ex_path, "output"), i), decision)
            for i, item in enumerate(
                _list(ex.get("output", []), _join(ex_path, "output"), "output")
            )
        ]
        actions_path = _join(ex_path, "actions")
        actions = [
            self.action(item, _join(actions_path, i))
            for i, item in enumerate(_list(ex.get("actions", []), actions_path, "actions"))
        ]
        tests_raw = list(_list(doc.get("tests", []), "tests", "tests"))
        tests = [self.test(item, _join("tests", i)) for i, item in enumerate(tests_raw)]
        if self.binding is not None:
            tests += self.binding.tests
        return Rule(
            id=rule_id,
            name=name,
            valid_from=valid_from,
            definitions=tuple(definitions),
            inputs=tuple(inputs),
            outputs=tuple(outputs),
            actions=tuple(actions),
            tests=tuple(tests),
            file=file,
        )

    def _article(self, doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        found: list[tuple[str, dict[str, Any]]] = []
        for i, art in enumerate(_list(doc["articles"], "articles", "articles")):
            art_path = _join("articles", i)
            art = _mapping(art, art_path, "an article")
            if "machine_readable" in art:
                mr_path = _join(art_path, "machine_readable")
                found.append(
                    (mr_path, _mapping(art["machine_readable"], mr_path, "machine_readable"))
                )
                number = str(art.get("number", "?"))
                law = str(doc.get("name", doc.get("$id", "")))
                self.article_basis = LegalBasis(
                    law=law,
                    article=number,
                    bwb_id=str(doc["bwb_id"]) if "bwb_id" in doc else None,
                    url=str(art["url"]) if "url" in art else None,
                )
        if len(found) != 1:
            raise fail(
                "articles",
                f"{len(found)} articles have a machine_readable section",
                "exactly one article with machine_readable per rule document",
            )
        return found[0]

    # --- declarations ---------------------------------------------------------------

    def legal_basis(self, value: object, path: str) -> LegalBasis:
        m = _mapping(value, path, "legal_basis")
        _no_extra(
            m,
            {"law", "article", "bwb_id", "url", "juriconnect", "explanation"},
            path,
            "legal_basis",
        )
        for key in ("law", "article"):
            if key not in m:
                raise fail(path, f"legal_basis has no {key!r}", "law and article")
        return LegalBasis(**{k: _text(v, _join(path, k), k) for k, v in m.items() if v is not None})

    def definitions(self, value: object, path: str) -> list[Definition]:
        m = _mapping(value, path, "definitions")
        return [self.definition(name, body, _join(path, name)) for name, body in m.items()]

    def definition(self, name: str, body: object, path: str) -> Definition:
        name = _name(name, path, "definition name")
        basis: LegalBasis | None = None
        if isinstance(body, dict):
            _no_extra(
                body,
                {"value", "valid_from", "versions", "legal_basis", "description"},
                path,
                f"definition {name!r}",
            )
            if "legal_basis" in body:
                basis = self.legal_basis(body["legal_basis"], _join(path, "legal_basis"))
            if "versions" in body:
                if "value" in body:
                    raise fail(
                        path,
                        f"definition {name!r} has both value and versions",
                        "either value or versions",
                    )
                vpath = _join(path, "versions")
                versions = [
                    self.version(v, _join(vpath, i))
                    for i, v in enumerate(_list(body["versions"], vpath, "versions"))
                ]
            elif "value" in body:
                vf = (
                    _date(body["valid_from"], _join(path, "valid_from"))
                    if "valid_from" in body
                    else None
                )
                versions = [
                    DefinitionVersion(
                        valid_from=vf, value=self.constant(body["value"], _join(path, "value"))
                    )
                ]
            else:
                raise fail(path, f"definition {name!r} has no value", "value or versions")
        else:
            versions = [DefinitionVersion(valid_from=None, value=self.constant(body, path))]
        if not versions:
            raise fail(path, f"definition {name!r} has no versions", "at least one version")
        dates = [v.valid_from for v in versions]
        if len(set(dates)) != len(dates):
            raise fail(
                path,
                f"definition {name!r} has two versions from the same date",
                "one version per valid_from date",
            )
        if len({type(v.value) for v in versions}) != 1:
            raise fail(
                path,
                f"versions of definition {name!r} mix booleans and numbers",
                "all versions of the same type",
            )
        return Definition(
            name=name, versions=tuple(versions), legal_basis=basis or self.article_basis, path=path
        )

    def version(self, value: object, path: str) -> DefinitionVersion:
        m = _mapping(value, path, "a version")
        _no_extra(m, {"valid_from", "value"}, path, "a version")
        if "valid_from" not in m or "value" not in m:
            raise fail(
                path, "a version needs valid_from and value", "valid_from: YYYY-MM-DD, value: N"
            )
        return DefinitionVersion(
            valid_from=_date(m["valid_from"], _join(path, "valid_from")),
            value=self.constant(m["value"], _join(path, "value")),
        )

    def constant(self, value: object, path: str) -> bool | int:
        if isinstance(value, bool | int):
            return value
        raise fail(
            path,
            f"the value {value!r} is not a whole number or boolean",
            "a whole number (amounts in euro cents) or true/false",
        )

    def value_type(self, value: object, path: str) -> ValueType:
        try:
            return ValueType(str(value))
        except ValueError:
            raise fail(
                path,
                f"type {value!r} is not supported",
                "one of " + ", ".join(t.value for t in ValueType),
            ) from None

    def input(self, value: object, path: str) -> Input:
        m = _mapping(value, path, "an input")
        _no_extra(
            m,
            {"name", "type", "source", "type_spec", "temporal", "description", "required"},
            path,
            "an input",
        )
        name = _name(m.get("name"), _join(path, "name"), "input name")
        vtype = self.value_type(m.get("type"), _join(path, "type"))
        declared: str | None = None
        source: Source | None = None
        if self.binding is not None and name in self.binding.inputs:
            source = self.binding.inputs[name]
            if "source" in m:
                declared = _describe_foreign(m["source"])
        elif "source" in m:
            spath = _join(path, "source")
            raw = _mapping(m["source"], spath, "source")
            if "polis" in raw or "query" in raw:
                source = parse_source(raw, spath)
            else:
                declared = _describe_foreign(raw)
        return Input(name=name, type=vtype, source=source, declared_source=declared, path=path)

    def output(self, value: object, path: str, decision: str | None) -> Output:
        m = _mapping(value, path, "an output")
        _no_extra(
            m,
            {"name", "type", "type_spec", "returned", "legal_basis", "description"},
            path,
            "an output",
        )
        name = _name(m.get("name"), _join(path, "name"), "output name")
        returned = m.get("returned", False)
        if not isinstance(returned, bool):
            raise fail(_join(path, "returned"), f"returned is {returned!r}", "true or false")
        basis = (
            self.legal_basis(m["legal_basis"], _join(path, "legal_basis"))
            if "legal_basis" in m
            else None
        )
        return Output(
            name=name,
            type=self.value_type(m.get("type"), _join(path, "type")),
            returned=returned or name == decision,
            legal_basis=basis,
            path=path,
        )

    def action(self, value: object, path: str) -> Action:
        m = _mapping(value, path, "an action")
        _no_extra(m, {"output", "value", "legal_basis", "description"}, path, "an action")
        if "value" not in m:
            raise fail(path, "the action has no value", "output: NAME and value: ...")
        basis = (
            self.legal_basis(m["legal_basis"], _join(path, "legal_basis"))
            if "legal_basis" in m
            else None
        )
        return Action(
            output=_name(m.get("output"), _join(path, "output"), "output"),
            value=parse_expr(m["value"], _join(path, "value")),
            legal_basis=basis,
            path=path,
        )

    def test(self, value: object, path: str) -> TestCase:
        return parse_test(value, path)


def parse_source(raw: dict[str, Any], path: str) -> Source:
    """Parse our source form: ``{polis: ATTRIBUTE, kinds: [...], sum_over: [...]}`` or
    ``{query: FIELD}``."""
    if "query" in raw:
        _no_extra(raw, {"query"}, path, "a query source")
        try:
            return QuerySource(field=QueryField(raw["query"]))
        except ValueError:
            raise fail(
                _join(path, "query"),
                f"SVB does not send a value {raw['query']!r}",
                "one of " + ", ".join(f.value for f in QueryField),
            ) from None
    _no_extra(raw, {"polis", "kinds", "sum_over"}, path, "a polis source")
    attribute = _name(raw.get("polis"), _join(path, "polis"), "polis attribute")
    kinds_raw = raw.get("kinds", [k.value for k in SourceKind])
    kpath = _join(path, "kinds")
    kinds: list[SourceKind] = []
    for i, k in enumerate(_list(kinds_raw, kpath, "kinds")):
        try:
            kinds.append(SourceKind(k))
        except ValueError:
            raise fail(
                _join(kpath, i),
                f"{k!r} is not a source kind",
                "one of " + ", ".join(s.value for s in SourceKind),
            ) from None
    if not kinds or len(set(kinds)) != len(kinds):
        raise fail(kpath, "kinds is empty or lists a kind twice", "each source kind at most once")
    opath = _join(path, "sum_over")
    over: list[Aggregation] = []
    for i, o in enumerate(_list(raw.get("sum_over", ["members", "months"]), opath, "sum_over")):
        try:
            over.append(Aggregation(o))
        except ValueError:
            raise fail(_join(opath, i), f"cannot sum over {o!r}", "members, months") from None
    return PolisSource(attribute=attribute, kinds=tuple(kinds), sum_over=tuple(sorted(set(over))))


def _describe_foreign(raw: object) -> str:
    if isinstance(raw, dict):
        parts = [f"{k}={raw[k]}" for k in ("regulation", "output") if k in raw]
        if parts:
            return " ".join(parts)
    return str(raw)[:200]


# --- expressions ----------------------------------------------------------------------

_OPERAND_KEYS: Final = {
    "operation",
    "subject",
    "value",
    "values",
    "conditions",
    "cases",
    "default",
    "description",
    "legal_basis",
}


def parse_expr(value: object, path: str, depth: int = 0) -> Expr:
    """Parse a RegelRecht operation tree (or a scalar / ``$reference``) into an expression."""
    if depth > MAX_EXPRESSION_DEPTH:
        raise fail(
            path,
            "the operation tree is nested too deeply",
            f"at most {MAX_EXPRESSION_DEPTH} levels; split it into named outputs",
        )
    if isinstance(value, bool | int):
        return Lit(value=value, path=path)
    if isinstance(value, str):
        if value.startswith("$") and len(value) > 1:
            return Ref(name=_name(value[1:], path, "reference"), path=path)
        raise fail(
            path,
            f"text value {value!r} is not supported",
            "a $reference, a whole number, true/false or an operation",
        )
    if isinstance(value, float):
        raise fail(
            path,
            f"{value!r} is not a whole number",
            "a whole number in cents, or a named definition",
        )
    if not isinstance(value, dict):
        raise fail(path, f"an operand is a {_kind(value)}", "a value or an operation")
    if "operation" not in value:
        raise fail(path, "this mapping has no 'operation'", "operation: one of " + SUPPORTED)
    name = value["operation"]
    try:
        op = Operation(name)
    except ValueError:
        raise fail(
            _join(path, "operation"), f"operation {name!r} is not supported", "one of " + SUPPORTED
        ) from None
    _no_extra(value, _OPERAND_KEYS, path, f"operation {op.value}")

    def sub(key: str) -> Expr:
        if key not in value:
            raise fail(path, f"{op.value} has no {key!r}", _shape(op))
        return parse_expr(value[key], _join(path, key), depth + 1)

    def many(key: str, at_least: int) -> tuple[Expr, ...]:
        if key not in value:
            raise fail(path, f"{op.value} has no {key!r}", _shape(op))
        items = _list(value[key], _join(path, key), key)
        if len(items) < at_least:
            raise fail(
                _join(path, key), f"{op.value} has {len(items)} operands", f"at least {at_least}"
            )
        return tuple(
            parse_expr(v, _join(_join(path, key), i), depth + 1) for i, v in enumerate(items)
        )

    used: set[str]
    if op in LOGICAL:
        args, used = many("conditions", 1), {"conditions"}
    elif op is Operation.NOT:
        args, used = (sub("value"),), {"value"}
    elif op in COMPARISONS:
        args, used = (sub("subject"), sub("value")), {"subject", "value"}
    elif op in ARITHMETIC:
        least = 2 if op in (Operation.SUBTRACT, Operation.DIVIDE) else 1
        args, used = many("values", least), {"values"}
    else:
        cpath = _join(path, "cases")
        cases = []
        for i, c in enumerate(_list(value.get("cases"), cpath, "cases")):
            cp = _join(cpath, i)
            cm = _mapping(c, cp, "a case")
            _no_extra(cm, {"when", "then"}, cp, "a case")
            if "when" not in cm or "then" not in cm:
                raise fail(cp, "a case needs 'when' and 'then'", "when: CONDITION, then: VALUE")
            cases.append(
                Case(
                    when=parse_expr(cm["when"], _join(cp, "when"), depth + 1),
                    then=parse_expr(cm["then"], _join(cp, "then"), depth + 1),
                )
            )
        if not cases:
            raise fail(cpath, "IF has no cases", "at least one case")
        return If(cases=tuple(cases), default=sub("default"), path=path)
    stray = sorted(
        set(value) & (_OPERAND_KEYS - used - {"operation", "description", "legal_basis"})
    )
    if stray:
        raise fail(_join(path, stray[0]), f"{op.value} does not take {stray[0]!r}", _shape(op))
    return Apply(op=op, args=args, path=path)


def _shape(op: Operation) -> str:
    if op in LOGICAL:
        return f"{op.value} with conditions: [...]"
    if op is Operation.NOT:
        return "NOT with value: CONDITION"
    if op in COMPARISONS:
        return f"{op.value} with subject: A and value: B"
    if op is Operation.IF:
        return "IF with cases: [{when, then}] and default"
    return f"{op.value} with values: [...]"


# --- test cases ----------------------------------------------------------------------


def parse_test(value: object, path: str) -> TestCase:
    """Parse a bundled test case (see docs/rules.md for its form)."""
    m = _mapping(value, path, "a test case")
    _no_extra(m, {"name", "period", "household", "expect"}, path, "a test case")
    name = _text(m.get("name"), _join(path, "name"), "name")
    period = _text(m.get("period"), _join(path, "period"), "period")
    hpath = _join(path, "household")
    h = _mapping(m.get("household"), hpath, "household")
    _no_extra(h, {"category", "known_income_cents", "polis"}, hpath, "household")
    category = h.get("category")
    if category not in ("single", "couple"):
        raise fail(_join(hpath, "category"), f"category is {category!r}", "single or couple")
    ppath = _join(hpath, "polis")
    polis: list[tuple[SourceKind, PolisSums]] = []
    for kind, sums in _mapping(h.get("polis", {}), ppath, "polis").items():
        kp = _join(ppath, kind)
        try:
            sk = SourceKind(kind)
        except ValueError:
            raise fail(
                kp,
                f"{kind!r} is not a source kind",
                "one of " + ", ".join(s.value for s in SourceKind),
            ) from None
        sm = _mapping(sums, kp, "polis sums")
        _no_extra(sm, {"gross_cents", "tax_cents"}, kp, "polis sums")
        polis.append(
            (
                sk,
                PolisSums(
                    gross_cents=_whole(
                        sm.get("gross_cents", 0), _join(kp, "gross_cents"), "gross_cents"
                    ),
                    tax_cents=_whole(sm.get("tax_cents", 0), _join(kp, "tax_cents"), "tax_cents"),
                ),
            )
        )
    epath = _join(path, "expect")
    expect = _mapping(m.get("expect"), epath, "expect")
    if not expect:
        raise fail(epath, "the test case expects nothing", "at least one output: value")
    return TestCase(
        name=name,
        period=period,
        has_partner=category == "couple",
        known_income_cents=_whole(
            h.get("known_income_cents", 0), _join(hpath, "known_income_cents"), "known_income_cents"
        ),
        polis=tuple(sorted(polis)),
        expect=tuple(
            sorted(
                (_name(k, _join(epath, k), "output"), _Parser(None).constant(v, _join(epath, k)))
                for k, v in expect.items()
            )
        ),
        path=path,
    )
