"""Shape checks shared by the parsers: each turns a wrong YAML value into a
:class:`RuleFormatError` with the path and the expected form."""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from shared.rules.errors import RuleFormatError

NAME_CHARS: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyz0123456789_ABCDEFGHIJKLMNOPQRSTUVWXYZ"
)  # RegelRecht also writes definition names in upper case (NORM_ALLEENSTAAND)


def fail(path: str, message: str, expected: str = "") -> RuleFormatError:
    return RuleFormatError(message, path=path, expected=expected)


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def mapping(value: object, path: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(path, f"{what} is a {kind_of(value)}", "a mapping (key: value lines)")
    return value


def as_list(value: object, path: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise fail(path, f"{what} is a {kind_of(value)}", "a list (lines starting with '-')")
    return value


def text(value: object, path: str, what: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise fail(path, f"{what} is {value!r}", "text")
    return str(value)


def name_of(value: object, path: str, what: str) -> str:
    name = text(value, path, what)
    if not set(name) <= NAME_CHARS or name[0].isdigit():
        raise fail(path, f"{what} {name!r} is not a valid name", "letters, digits, '_'")
    return name


def as_date(value: object, path: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise fail(path, f"{value!r} is not a date", "a date YYYY-MM-DD")


def whole(value: object, path: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(path, f"{what} is {value!r}", "a whole number (amounts in euro cents)")
    return value


def no_extra(m: dict[str, Any], allowed: set[str], path: str, what: str) -> None:
    extra = sorted(set(m) - allowed)
    if extra:
        raise fail(
            join(path, extra[0]),
            f"{what} has an unknown key {extra[0]!r}",
            "one of " + ", ".join(sorted(allowed)),
        )


def kind_of(value: object) -> str:
    if value is None:
        return "empty value"
    return {dict: "mapping", list: "list", str: "text", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def constant(value: object, path: str) -> bool | int:
    """A definition value or expected test outcome: a whole number or a boolean."""
    if isinstance(value, bool | int):
        return value
    raise fail(
        path,
        f"the value {value!r} is not a whole number or boolean",
        "a whole number (amounts in euro cents) or true/false",
    )
