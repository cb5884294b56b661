"""Keys, signatures and signed documents of the compute-to-data mode.

* :mod:`~shared.crypto.keys`: Ed25519 keys, encrypted at rest (scrypt + AES-GCM);
* :mod:`~shared.crypto.registry`: who may author, approve, audit and run; the approval policy;
* :mod:`~shared.crypto.dsse`: DSSE envelopes (payload type signed with the payload);
* :mod:`~shared.crypto.approval`: the signed rule bundle and rule approvals;
* :mod:`~shared.crypto.statement`: the runner's in-toto run statement and its verification.

Errors derive from :class:`~shared.crypto.errors.SigningError` (tree in that module).
"""

from shared.crypto.approval import (
    APPROVAL_TYPE,
    BUNDLE_TYPE,
    Approval,
    RuleBundle,
    open_approval,
    open_bundle,
    policy_shortfall,
)
from shared.crypto.dsse import Envelope, pae, sign
from shared.crypto.errors import (
    KeyFileError,
    RegistryError,
    RoleError,
    SignatureInvalid,
    SigningError,
    StatementMismatch,
)
from shared.crypto.keys import PublicKey, SigningKey, key_id_of, read_public
from shared.crypto.registry import (
    AccessRole,
    ApprovalPolicy,
    KeyEntry,
    OrganisationEntry,
    Registry,
    Requirement,
    Role,
)
from shared.crypto.statement import (
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    ApprovalRef,
    Isolation,
    RunPredicate,
    RunStatement,
    Tee,
    batch_digest,
    open_statement,
    output_digest,
    salt_commitment,
    statement_digest,
    verify_run,
)

__all__ = [
    "APPROVAL_TYPE",
    "BUNDLE_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "AccessRole",
    "Approval",
    "ApprovalPolicy",
    "ApprovalRef",
    "Envelope",
    "Isolation",
    "KeyEntry",
    "KeyFileError",
    "OrganisationEntry",
    "PublicKey",
    "Registry",
    "RegistryError",
    "Requirement",
    "Role",
    "RoleError",
    "RuleBundle",
    "RunPredicate",
    "RunStatement",
    "SignatureInvalid",
    "SigningError",
    "SigningKey",
    "StatementMismatch",
    "Tee",
    "batch_digest",
    "key_id_of",
    "open_approval",
    "open_bundle",
    "open_statement",
    "output_digest",
    "pae",
    "policy_shortfall",
    "read_public",
    "salt_commitment",
    "sign",
    "statement_digest",
    "verify_run",
]
