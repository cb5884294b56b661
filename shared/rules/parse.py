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

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared.rules._syntax import (
    as_date,
    as_list,
    constant,
    fail,
    join,
    mapping,
    name_of,
    no_extra,
    text,
)
from shared.rules.binding import Binding, load_binding
from shared.rules.errors import RuleError, RuleFormatError
from shared.rules.expressions import parse_expr
from shared.rules.load import load_yaml, read_text
from shared.rules.model import (
    Action,
    Definition,
    DefinitionVersion,
    Input,
    LegalBasis,
    Output,
    Rule,
    Source,
    ValueType,
)
from shared.rules.sources import describe_foreign, parse_source
from shared.rules.testcases import parse_test


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
    except ValidationError as exc:
        # The parser checks every field before building a model; this is a safety net so
        # that a gap there still ends as a refusal, never as a traceback.
        first = exc.errors()[0]
        raise RuleFormatError(
            f"the document does not have the expected form: {first['msg']}", file=file
        ) from None


class _Parser:
    def __init__(self, binding: Binding | None) -> None:
        self.binding = binding
        self.article_basis: LegalBasis | None = None

    # --- document layout --------------------------------------------------------------

    def document(self, doc: dict[str, Any], file: str) -> Rule:
        rule_id = text(doc.get("$id", doc.get("id", "")) or "unnamed", "$id", "$id")
        if self.binding is not None and self.binding.binding_for != rule_id:
            raise fail(
                "$id",
                f"the binding is for {self.binding.binding_for!r}, not for this rule",
                f"a binding with binding_for: {rule_id}",
            )
        name = text(doc.get("name", rule_id), "name", "name")
        valid_from = as_date(doc["valid_from"], "valid_from") if "valid_from" in doc else None
        if "machine_readable" in doc:
            mr_path = "machine_readable"
            mr = mapping(doc["machine_readable"], mr_path, "machine_readable")
        elif "articles" in doc:
            mr_path, mr = self._article(doc)
        else:
            raise fail("", "the document has no machine_readable section", "machine_readable")
        no_extra(
            mr,
            {"definitions", "execution", "parameters", "input", "output", "actions"}
            | {"untranslatables", "requires", "produces", "decision"},
            mr_path,
            "machine_readable",
        )
        ex, ex_path = mr, mr_path
        if "execution" in mr:
            ex_path = join(mr_path, "execution")
            ex = mapping(mr["execution"], ex_path, "execution")
            no_extra(
                ex,
                {"parameters", "input", "output", "actions", "produces", "requires"},
                ex_path,
                "execution",
            )
        definitions = self.definitions(mr.get("definitions", {}), join(mr_path, "definitions"))
        inputs = [
            self.input(item, join(join(ex_path, key), i))
            for key in ("parameters", "input")
            for i, item in enumerate(as_list(ex.get(key, []), join(ex_path, key), key))
        ]
        decision = self.binding.decision if self.binding and self.binding.decision else None
        if "decision" in mr:
            decision = name_of(mr["decision"], join(mr_path, "decision"), "decision")
        outputs = [
            self.output(item, join(join(ex_path, "output"), i), decision)
            for i, item in enumerate(
                as_list(ex.get("output", []), join(ex_path, "output"), "output")
            )
        ]
        actions_path = join(ex_path, "actions")
        actions = [
            self.action(item, join(actions_path, i))
            for i, item in enumerate(as_list(ex.get("actions", []), actions_path, "actions"))
        ]
        tests_raw = list(as_list(doc.get("tests", []), "tests", "tests"))
        tests = [parse_test(item, join("tests", i)) for i, item in enumerate(tests_raw)]
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
        for i, art in enumerate(as_list(doc["articles"], "articles", "articles")):
            art_path = join("articles", i)
            art = mapping(art, art_path, "an article")
            if "machine_readable" in art:
                mr_path = join(art_path, "machine_readable")
                found.append(
                    (mr_path, mapping(art["machine_readable"], mr_path, "machine_readable"))
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
        m = mapping(value, path, "legal_basis")
        no_extra(
            m,
            {"law", "article", "bwb_id", "url", "juriconnect", "explanation"},
            path,
            "legal_basis",
        )
        for key in ("law", "article"):
            if m.get(key) is None:
                raise fail(path, f"legal_basis has no {key!r}", "law and article")
        return LegalBasis(**{k: text(v, join(path, k), k) for k, v in m.items()})

    def definitions(self, value: object, path: str) -> list[Definition]:
        m = mapping(value, path, "definitions")
        return [self.definition(name, body, join(path, name)) for name, body in m.items()]

    def definition(self, name: str, body: object, path: str) -> Definition:
        name = name_of(name, path, "definition name")
        basis: LegalBasis | None = None
        if isinstance(body, dict):
            no_extra(
                body,
                {"value", "valid_from", "versions", "legal_basis", "description"},
                path,
                f"definition {name!r}",
            )
            if "legal_basis" in body:
                basis = self.legal_basis(body["legal_basis"], join(path, "legal_basis"))
            if "versions" in body:
                if "value" in body:
                    raise fail(
                        path,
                        f"definition {name!r} has both value and versions",
                        "either value or versions",
                    )
                vpath = join(path, "versions")
                versions = [
                    self.version(v, join(vpath, i))
                    for i, v in enumerate(as_list(body["versions"], vpath, "versions"))
                ]
            elif "value" in body:
                vf = (
                    as_date(body["valid_from"], join(path, "valid_from"))
                    if "valid_from" in body
                    else None
                )
                versions = [
                    DefinitionVersion(
                        valid_from=vf, value=constant(body["value"], join(path, "value"))
                    )
                ]
            else:
                raise fail(path, f"definition {name!r} has no value", "value or versions")
        else:
            versions = [DefinitionVersion(valid_from=None, value=constant(body, path))]
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
        m = mapping(value, path, "a version")
        no_extra(m, {"valid_from", "value"}, path, "a version")
        if "valid_from" not in m or "value" not in m:
            raise fail(
                path, "a version needs valid_from and value", "valid_from: YYYY-MM-DD, value: N"
            )
        return DefinitionVersion(
            valid_from=as_date(m["valid_from"], join(path, "valid_from")),
            value=constant(m["value"], join(path, "value")),
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
        m = mapping(value, path, "an input")
        no_extra(
            m,
            {"name", "type", "source", "type_spec", "temporal", "description", "required"},
            path,
            "an input",
        )
        name = name_of(m.get("name"), join(path, "name"), "input name")
        vtype = self.value_type(m.get("type"), join(path, "type"))
        declared: str | None = None
        source: Source | None = None
        if self.binding is not None and name in self.binding.inputs:
            source = self.binding.inputs[name]
            if "source" in m:
                declared = describe_foreign(m["source"])
        elif "source" in m:
            spath = join(path, "source")
            raw = mapping(m["source"], spath, "source")
            if "polis" in raw or "query" in raw:
                source = parse_source(raw, spath)
            else:
                declared = describe_foreign(raw)
        return Input(name=name, type=vtype, source=source, declared_source=declared, path=path)

    def output(self, value: object, path: str, decision: str | None) -> Output:
        m = mapping(value, path, "an output")
        no_extra(
            m,
            {"name", "type", "type_spec", "returned", "legal_basis", "description"},
            path,
            "an output",
        )
        name = name_of(m.get("name"), join(path, "name"), "output name")
        returned = m.get("returned", False)
        if not isinstance(returned, bool):
            raise fail(join(path, "returned"), f"returned is {returned!r}", "true or false")
        basis = (
            self.legal_basis(m["legal_basis"], join(path, "legal_basis"))
            if "legal_basis" in m
            else None
        )
        return Output(
            name=name,
            type=self.value_type(m.get("type"), join(path, "type")),
            returned=returned or name == decision,
            legal_basis=basis,
            path=path,
        )

    def action(self, value: object, path: str) -> Action:
        m = mapping(value, path, "an action")
        no_extra(m, {"output", "value", "legal_basis", "description"}, path, "an action")
        if "value" not in m:
            raise fail(path, "the action has no value", "output: NAME and value: ...")
        basis = (
            self.legal_basis(m["legal_basis"], join(path, "legal_basis"))
            if "legal_basis" in m
            else None
        )
        return Action(
            output=name_of(m.get("output"), join(path, "output"), "output"),
            value=parse_expr(m["value"], join(path, "value")),
            legal_basis=basis,
            path=path,
        )
