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
    organisations:                 # who may do what over the network (mutual TLS)
      - {name: SVB, oin: "00000099000000000020", roles: [screener]}
      - {name: ADR, oin: "00000099000000000030", roles: [auditor]}
      - {name: UWV, oin: "00000099000000000010", roles: [operator]}

The approval policy is configuration: which roles (and organisations) must each sign an
approval before a rule digest may run, and how long an approval may be valid.

``organisations`` maps the OIN in a verified TLS certificate (:class:`shared.pki.Identity`)
to what that organisation may do (:class:`AccessRole`); certificates carry no roles, so
changing a role is an edit here, not a new certificate. The section is optional: registry
files written before it existed load unchanged, with no organisation allowed anything over
the network. Quote OINs: unquoted, YAML reads 20 digits as a number and drops leading zeros
(the parser then says so).
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from shared.crypto.errors import RegistryError, RoleError
from shared.crypto.keys import PublicKey
from shared.pki.errors import OinError
from shared.pki.oin import check_oin

if TYPE_CHECKING:
    from shared.pki.identity import Identity


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


class AccessRole(enum.StrEnum):
    """What an organisation may do over the network, once its certificate is verified."""

    SCREENER = "screener"
    """Screen batches and submit and run rules (SVB)."""
    AUDITOR = "auditor"
    """Read the audit log and witness checkpoints (an independent auditor)."""
    OPERATOR = "operator"
    """UWV's own operator tools; approving rules stays off the network regardless."""


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


class OrganisationEntry(_Frozen):
    """One organisation that may call UWV's services: its OIN and network roles."""

    name: str = Field(min_length=1, max_length=100)
    oin: str
    roles: frozenset[AccessRole] = Field(min_length=1)

    @field_validator("oin", mode="before")
    @classmethod
    def _oin(cls, value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(
                f'OIN {value} is a number; quote it in YAML ("...") so its leading zeros stay'
            )
        try:
            return check_oin(value if isinstance(value, str) else repr(value))
        except OinError as exc:
            raise ValueError(str(exc)) from None


class Registry(_Frozen):
    """The parsed registry: keys by id, the approval policy, organisations by OIN."""

    keys: tuple[KeyEntry, ...]
    approval_policy: ApprovalPolicy = ApprovalPolicy()
    organisations: tuple[OrganisationEntry, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> Registry:
        ids = [k.key_id for k in self.keys]  # also checks every public key decodes
        if len(ids) != len(set(ids)):
            raise ValueError("a public key is listed twice")
        names = [k.name for k in self.keys]
        if len(names) != len(set(names)):
            raise ValueError("a key name is listed twice")
        oins = [o.oin for o in self.organisations]
        if len(oins) != len(set(oins)):
            raise ValueError("an organisation's OIN is listed twice")
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
        if not data["organisations"]:
            del data["organisations"]  # files from before the section stay byte-identical
        for o in data.get("organisations", ()):
            o["roles"] = sorted(o["roles"])
        return yaml.safe_dump(data, sort_keys=False)

    def organisation_for(self, identity: Identity) -> OrganisationEntry | None:
        """The organisation entry with ``identity``'s OIN, or ``None`` if it is not listed."""
        for o in self.organisations:
            if o.oin == identity.oin:
                return o
        return None

    def roles_for(self, identity: Identity) -> frozenset[AccessRole]:
        """The network roles of ``identity``'s organisation (by OIN); empty if not listed.

        The OIN decides, not the certificate's organisation name: PKIoverheid certificates
        spell names their own way, the OIN is the registered identifier.
        """
        entry = self.organisation_for(identity)
        return frozenset() if entry is None else entry.roles

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
        return Registry(
            keys=(*self.keys, entry),
            approval_policy=self.approval_policy,
            organisations=self.organisations,
        )


def _first(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg']}" if where else str(err["msg"])
    return str(exc)
