"""The key registry: who may author rules, approve them, audit them and sign run statements.

A small YAML (or JSON) file that both sides keep a copy of::

    keys:
      - name: svb-rules            # a label for people
        organisation: SVB
        roles: [author]
        public_key: <base64 of the raw 32-byte Ed25519 public key>
      - {name: uwv-operator, organisation: UWV, roles: [approver], public_key: ...}
      - {name: auditor-adr, organisation: ADR, roles: [auditor], public_key: ...}
      - {name: uwv-runner, organisation: UWV, roles: [runner], public_key: ...}
    approval_policy:
      required:                    # every entry needs one distinct approving key
        - {role: approver, organisation: UWV}
        - {role: auditor}
      max_validity_days: 366

The approval policy is configuration: which roles (and organisations) must each sign an
approval before a rule digest may run, and how long an approval may be valid.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.crypto.errors import RegistryError, RoleError
from shared.crypto.keys import PublicKey


class Role(enum.StrEnum):
    """What a key may sign."""

    AUTHOR = "author"
    """A rule bundle (SVB)."""
    APPROVER = "approver"
    """An approval of a rule digest for a validity window (UWV)."""
    AUDITOR = "auditor"
    """An approval as independent auditor; also reads the log."""
    RUNNER = "runner"
    """A run statement (the isolated runner)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KeyEntry(_Frozen):
    """One registered public key and its roles."""

    name: str = Field(min_length=1, max_length=100)
    organisation: str = Field(min_length=1, max_length=100)
    roles: frozenset[Role] = Field(min_length=1)
    public_key: str

    @property
    def key(self) -> PublicKey:
        return PublicKey.from_b64(self.public_key)

    @property
    def key_id(self) -> str:
        return self.key.key_id


class Requirement(_Frozen):
    """One approval the policy requires: a key with ``role`` (of ``organisation`` if set)."""

    role: Role
    organisation: str | None = None

    def met_by(self, entry: KeyEntry) -> bool:
        return self.role in entry.roles and self.organisation in (None, entry.organisation)

    def __str__(self) -> str:
        return f"{self.role.value}" + (f" of {self.organisation}" if self.organisation else "")


class ApprovalPolicy(_Frozen):
    """Which approvals a rule digest needs before it may run."""

    required: tuple[Requirement, ...] = (Requirement(role=Role.APPROVER),)
    max_validity_days: int = Field(default=366, gt=0, le=3660)


class Registry(_Frozen):
    """The parsed registry: keys by id, and the approval policy."""

    keys: tuple[KeyEntry, ...]
    approval_policy: ApprovalPolicy = ApprovalPolicy()

    @model_validator(mode="after")
    def _unique(self) -> Registry:
        ids = [k.key_id for k in self.keys]  # also checks every public key decodes
        if len(ids) != len(set(ids)):
            raise ValueError("a public key is listed twice")
        names = [k.name for k in self.keys]
        if len(names) != len(set(names)):
            raise ValueError("a key name is listed twice")
        return self

    @classmethod
    def from_file(cls, path: Path) -> Registry:
        """Read a registry file (YAML or JSON)."""
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise RegistryError(f"{path}: cannot read the key registry: {exc.strerror}") from None
        except yaml.YAMLError:
            raise RegistryError(f"{path}: the key registry is not valid YAML") from None
        return cls.parse(data, where=str(path))

    @classmethod
    def parse(cls, data: Any, *, where: str = "registry") -> Registry:
        try:
            return cls.model_validate(data)
        except (ValidationError, ValueError) as exc:
            raise RegistryError(f"{where}: the key registry is not valid: {_first(exc)}") from None

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_none=True)
        for k in data["keys"]:
            k["roles"] = sorted(k["roles"])
        return yaml.safe_dump(data, sort_keys=False)

    def entry(self, key_id: str) -> KeyEntry:
        """The entry of ``key_id``; :class:`RegistryError` if it is not registered."""
        for k in self.keys:
            if k.key_id == key_id:
                return k
        raise RegistryError(f"key {key_id} is not in the key registry")

    def require(self, key_id: str, role: Role) -> KeyEntry:
        """The entry of ``key_id`` if it has ``role``; else :class:`RoleError`."""
        entry = self.entry(key_id)
        if role not in entry.roles:
            raise RoleError(
                f"key {key_id} ({entry.name}, {entry.organisation}) may not act as {role.value}; "
                f"its roles are {', '.join(sorted(entry.roles))}"
            )
        return entry

    def with_key(self, entry: KeyEntry) -> Registry:
        """A copy with one more key (the ``keys add`` command)."""
        return Registry(keys=(*self.keys, entry), approval_policy=self.approval_policy)


def _first(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg']}" if where else str(err["msg"])
    return str(exc)
