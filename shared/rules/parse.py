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
    Scope,
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
            sections = [(mr_path, mapping(doc["machine_readable"], mr_path, "machine_readable"))]
            bases: list[LegalBasis | None] = [None]
        elif "articles" in doc:
            sections, bases = self._articles(doc)
        elif "properties" in doc or "requirements" in doc:
            raise fail("", *_poc_machine_law_reason(doc))
        else:
            raise fail("", "the document has no machine_readable section", "machine_readable")
        decision = self.binding.decision if self.binding and self.binding.decision else None
        constructs: list[str] = []
        # First pass: every output (declared or computed) of the document, so that an input
        # whose source is another article's output becomes a reference to it.
        produced = {
            str(item.get("name") if key == "output" else item.get("output"))
            for _, mr in sections
            for key in ("output", "actions")
            for item in _list(_execution(mr).get(key))
            if isinstance(item, dict)
        }
        definitions: list[Definition] = []
        inputs: dict[str, Input] = {}
        outputs: dict[str, Output] = {}
        actions: list[Action] = []
        for (mr_path, mr), basis in zip(sections, bases, strict=True):
            self.article_basis = basis
            no_extra(mr, _SECTION_KEYS | _IGNORED_KEYS, mr_path, "machine_readable")
            constructs += [f"{mr_path}: {k}" for k in sorted(set(mr) & _IGNORED_KEYS)]
            for u in mr.get("untranslatables", []) or []:
                if isinstance(u, dict) and u.get("accepted") is not True:
                    constructs.append(
                        f"{mr_path}: {UNTRANSLATED} {u.get('construct', '?')!r} "
                        f"({u.get('reason', 'no reason given')})"
                    )
            ex, ex_path = mr, mr_path
            if "execution" in mr:
                ex_path = join(mr_path, "execution")
                ex = mapping(mr["execution"], ex_path, "execution")
                no_extra(
                    ex,
                    {"parameters", "input", "output", "actions", "definitions"}
                    | {"produces", "requires"},
                    ex_path,
                    "execution",
                )
                constructs += [f"{ex_path}: {k}" for k in sorted(set(ex) & {"produces"})]
            for dm, dpath in [(mr, mr_path)] + ([(ex, ex_path)] if ex is not mr else []):
                for d in self.definitions(dm.get("definitions", {}), join(dpath, "definitions")):
                    if any(x.name == d.name for x in definitions):
                        raise fail(
                            d.path,
                            f"definition {d.name!r} is declared twice",
                            "one definition per name in a document",
                        )
                    definitions.append(d)
            if "decision" in mr:
                decision = name_of(mr["decision"], join(mr_path, "decision"), "decision")
            declared_out = {
                str(o.get("name")) for o in as_list(ex.get("output", []), ex_path, "output")
                if isinstance(o, dict)
            }  # fmt: skip
            rename: dict[str, str] = {}
            terms = as_list(mr.get("open_terms", []), join(mr_path, "open_terms"), "open_terms")
            for i, term in enumerate(terms):
                inp = self.open_term(term, join(join(mr_path, "open_terms"), i))
                if inp.name in declared_out and basis is not None:
                    rename[inp.name] = f"{inp.name}__input"
                    inp = inp.model_copy(update={"name": f"{inp.name}__input"})
                inputs.setdefault(inp.name, inp)
            for key in ("parameters", "input"):
                kpath = join(ex_path, key)
                for i, item in enumerate(as_list(ex.get(key, []), kpath, key)):
                    target = _internal_output(item, produced, self.binding)
                    if target is not None:  # another article's output: refer to it
                        rename[str(item["name"])] = target
                        continue
                    inp = self.input(item, join(kpath, i))
                    if inp.name in declared_out and basis is not None:
                        # RegelRecht: inside this article $name is the input; the output of
                        # the same name is what the article passes on.
                        rename[inp.name] = f"{inp.name}__input"
                        inp = inp.model_copy(update={"name": f"{inp.name}__input"})
                    known = inputs.get(inp.name)
                    if known is not None and (known.type, known.source) != (inp.type, inp.source):
                        raise fail(inp.path, f"input {inp.name!r} is declared twice, differently",
                                   "the same type and source in every article")  # fmt: skip
                    inputs.setdefault(inp.name, inp)
            opath = join(ex_path, "output")
            for i, item in enumerate(as_list(ex.get("output", []), opath, "output")):
                out = self.output(item, join(opath, i), decision)
                if out.name in outputs:
                    raise fail(out.path, f"output {out.name!r} is declared twice",
                               "one output per name in a document")  # fmt: skip
                outputs[out.name] = out
            apath = join(ex_path, "actions")
            for i, item in enumerate(as_list(ex.get("actions", []), apath, "actions")):
                act = self.action(item, join(apath, i), rename)
                if act.output not in outputs and basis is not None:
                    # RegelRecht: an action may compute an intermediate value it never declares
                    outputs[act.output] = Output(
                        name=act.output, type=ValueType.NUMBER, inferred=True, path=act.path
                    )
                actions.append(act)
        if decision is not None and decision in outputs:
            outputs[decision] = outputs[decision].model_copy(update={"returned": True})
        tests_raw = list(as_list(doc.get("tests", []), "tests", "tests"))
        tests = [parse_test(item, join("tests", i)) for i, item in enumerate(tests_raw)]
        if self.binding is not None:
            tests += self.binding.tests
        return Rule(
            id=rule_id,
            name=name,
            valid_from=valid_from,
            definitions=tuple(definitions),
            inputs=tuple(inputs.values()),
            outputs=tuple(outputs.values()),
            actions=tuple(actions),
            tests=tuple(tests),
            constructs=tuple(constructs),
            file=file,
        )

    def _articles(
        self, doc: dict[str, Any]
    ) -> tuple[list[tuple[str, dict[str, Any]]], list[LegalBasis | None]]:
        """Every article with a machine_readable section, and its legal basis."""
        found: list[tuple[str, dict[str, Any]]] = []
        bases: list[LegalBasis | None] = []
        for i, art in enumerate(as_list(doc["articles"], "articles", "articles")):
            art_path = join("articles", i)
            art = mapping(art, art_path, "an article")
            if "machine_readable" in art:
                mr_path = join(art_path, "machine_readable")
                found.append(
                    (mr_path, mapping(art["machine_readable"], mr_path, "machine_readable"))
                )
                bases.append(
                    LegalBasis(
                        law=str(doc.get("name", doc.get("$id", ""))),
                        article=str(art.get("number", "?")),
                        bwb_id=str(doc["bwb_id"]) if "bwb_id" in doc else None,
                        url=str(art["url"]) if "url" in art else None,
                    )
                )
        if not found:
            raise fail("articles", "no article has a machine_readable section",
                       "at least one article with machine_readable")  # fmt: skip
        return found, bases

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
                {"value", "valid_from", "versions", "legal_basis", "description"}
                | {"type", "type_spec", "unit"},
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

    def open_term(self, value: object, path: str) -> Input:
        """A RegelRecht open term (a value another regulation fills in): an input whose value
        only a binding can supply here."""
        m = mapping(value, path, "an open term")
        name = name_of(m.get("id"), join(path, "id"), "open term id")
        delegated = " ".join(str(m[k]) for k in ("delegated_to", "delegation_type") if k in m)
        source: Source | None = None
        if self.binding is not None and name in self.binding.inputs:
            source = self.binding.inputs[name]
        return Input(
            name=name,
            type=self.value_type(m.get("type"), join(path, "type")),
            source=source,
            declared_source=f"open term ({delegated or 'delegated'})",
            path=path,
        )

    def output(self, value: object, path: str, decision: str | None) -> Output:
        m = mapping(value, path, "an output")
        no_extra(
            m,
            {"name", "type", "type_spec", "returned", "legal_basis", "description", "per"},
            path,
            "an output",
        )
        per = m.get("per", Scope.HOUSEHOLD.value)
        if not isinstance(per, str) or per not in {s.value for s in Scope}:
            raise fail(join(path, "per"), f"per is {per!r}", "household or person_month")
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
            per=Scope(per),
            legal_basis=basis,
            path=path,
        )

    def action(self, value: object, path: str, rename: dict[str, str] | None = None) -> Action:
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
            value=parse_expr(m["value"], join(path, "value"), rename=rename),
            legal_basis=basis,
            path=path,
        )


UNTRANSLATED = "untranslatable construct not accepted:"
"""A construct of the law the machine-readable text declares it does not implement, and that
nobody accepted as harmless: the document loads, but the verifier refuses to run it."""

_SECTION_KEYS = {"definitions", "execution", "parameters", "input", "output", "actions", "decision"}
# RegelRecht constructs that say something about the law's place in the legal order (who
# decides, what it implements, which open terms another regulation fills in, hooks and
# overrides between laws) but not about what this document computes on its own inputs: they
# load, are part of the identity (Rule.constructs), and do not change an evaluation here.
_IGNORED_KEYS = {
    "untranslatables",
    "requires",
    "produces",
    "endpoint",
    "competent_authority",
    "enables",
    "open_terms",
    "implements",
    "hooks",
    "overrides",
}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _execution(mr: dict[str, Any]) -> dict[str, Any]:
    ex = mr.get("execution", mr)
    return ex if isinstance(ex, dict) else {}


def _internal_output(item: object, produced: set[str], binding: Binding | None) -> str | None:
    """The output of this document an input refers to (``source: {output: NAME}`` without a
    ``regulation``), unless a binding maps the input."""
    if not isinstance(item, dict) or (binding is not None and item.get("name") in binding.inputs):
        return None
    source = item.get("source")
    if not isinstance(source, dict) or "regulation" in source or "output" not in source:
        return None
    target = str(source["output"])
    return target if target in produced else None


def _poc_machine_law_reason(doc: dict[str, Any]) -> tuple[str, str]:
    """Why a document in poc-machine-law's older schema does not load, as precisely as its
    content allows."""
    refs: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, str) and node.startswith("$"):
            refs.add(node)
        elif isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc.get("requirements", []))
    props = doc.get("properties", {}) if isinstance(doc.get("properties"), dict) else {}
    services = sorted(
        {
            str(i["service_reference"].get("service"))
            for i in props.get("input", []) or []
            if isinstance(i, dict) and isinstance(i.get("service_reference"), dict)
        }
    )
    message = (
        "this is a poc-machine-law document (its older schema: properties, requirements, "
        "actions with operation/values at the action, inputs with service_reference), not "
        "RegelRecht's article schema; it is not translated automatically"
    )
    if refs:
        message += (
            "; its decision is gated by requirements on "
            + ", ".join(sorted(refs))
            + " (assets and age are not in UWV's polis nor in SVB's query)"
        )
    if services:
        message += "; its inputs come from the services " + ", ".join(services)
    return message, "a RegelRecht document (articles with machine_readable) and a binding"
