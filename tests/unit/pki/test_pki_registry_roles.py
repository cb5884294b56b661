"""Organisation entries in the key registry: OIN → network roles; old files still load."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.crypto import AccessRole, Registry, RegistryError, SigningKey
from shared.pki import Identity

_NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _identity(oin: str, organisation: str = "Whoever") -> Identity:
    return Identity(oin, organisation, f"O={organisation}", "00" * 32, _NOW, _NOW)


def _key_entry() -> dict[str, object]:
    key = SigningKey.generate("svb")
    return {"name": "svb-rules", "organisation": "SVB", "roles": ["author"],
            "public_key": key.public.to_b64()}  # fmt: skip


def test_a_registry_without_organisations_still_loads_and_grants_nothing() -> None:
    reg = Registry.parse({"keys": [_key_entry()]})
    assert reg.organisations == ()
    assert reg.roles_for(_identity("00000099000000000020")) == frozenset()
    assert "organisations" not in reg.to_yaml()


def test_roles_by_oin_not_by_name(tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(
        "keys: []\n"
        "organisations:\n"
        '  - {name: SVB, oin: "00000099000000000020", roles: [screener]}\n'
        '  - {name: ADR, oin: "00000099000000000030", roles: [auditor]}\n'
        '  - {name: UWV, oin: "00000099000000000010", roles: [operator, auditor]}\n'
    )
    reg = Registry.from_file(path)
    svb = _identity("00000099000000000020", "Sociale Verzekeringsbank")
    assert reg.roles_for(svb) == {AccessRole.SCREENER}
    assert reg.roles_for(_identity("00000099000000000010")) == {
        AccessRole.OPERATOR,
        AccessRole.AUDITOR,
    }
    assert reg.roles_for(_identity("00000099000000000099", "SVB")) == frozenset()
    entry = reg.organisation_for(svb)
    assert entry is not None and entry.name == "SVB"
    assert Registry.parse(__import__("yaml").safe_load(reg.to_yaml())) == reg


@pytest.mark.parametrize(
    ("oin", "message"),
    [
        ("00000001234567000000", "is a number; quote it"),  # YAML 1.1: octal
        ('"1234"', "exactly 20 digits"),
        ('"0000009900000000002x"', "exactly 20 digits"),
    ],
)
def test_malformed_oins_are_refused_with_their_place(
    tmp_path: Path, oin: str, message: str
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(f"keys: []\norganisations:\n  - {{name: SVB, oin: {oin}, roles: [screener]}}\n")
    with pytest.raises(RegistryError, match=message) as info:
        Registry.from_file(path)
    assert "organisations.0.oin" in str(info.value)


def test_unknown_roles_and_duplicates_are_refused() -> None:
    with pytest.raises(RegistryError, match=r"organisations\.0\.roles"):
        Registry.parse(
            {"keys": [], "organisations": [{"name": "A", "oin": "0" * 20, "roles": ["root"]}]}
        )
    with pytest.raises(RegistryError, match="listed twice"):
        Registry.parse(
            {
                "keys": [],
                "organisations": [
                    {"name": "A", "oin": "0" * 20, "roles": ["screener"]},
                    {"name": "B", "oin": "0" * 20, "roles": ["auditor"]},
                ],
            }
        )
    with pytest.raises(RegistryError, match="roles"):
        Registry.parse({"keys": [], "organisations": [{"name": "A", "oin": "0" * 20, "roles": []}]})
