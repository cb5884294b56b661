"""Sealed-file identities from the project's PKI files and key registry (``shared.pki``).

A party directory (``docs/identity.md``) holds ``cert.pem``, ``key.pem`` (encrypted) and
``ca.pem``. A sender signs with its TLS identity (``svb/`` for SVB, ``server/`` for UWV); a
receiver opens files with its *sealing* identity (``svb-sealing/``, ``uwv-sealing/``: profile
``sealing``, keyUsage keyAgreement). Who may send which kind of file follows the registry's
network roles: an organisation with the ``screener`` role may send requests and rule
submissions; replies are accepted only from the organisation the request was sealed to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Final

from cryptography import x509

from shared.crypto.registry import AccessRole, Registry
from shared.pki.identity import load_certificate, load_certificates
from shared.pki.keystore import load_private_key
from shared.pki.layout import PartyFiles
from shared.sealed.errors import SignerRefused
from shared.sealed.header import MessageKind
from shared.sealed.identity import ReceiverKey, Recipient, SenderKey, TrustedSenders, oin_of

KINDS_BY_ROLE: Final[Mapping[AccessRole, frozenset[MessageKind]]] = {
    AccessRole.SCREENER: frozenset({MessageKind.REQUEST, MessageKind.RULE_SUBMISSION}),
}
"""What each network role may send as a sealed file to UWV (the same table as for RPCs)."""
REPLY_KINDS: Final = frozenset({MessageKind.RESPONSE, MessageKind.RUN_STATEMENT})


def load_sender(party: Path, passphrase: bytes) -> SenderKey:
    """The signing identity in a party directory (its TLS certificate and key)."""
    files = PartyFiles(party)
    cert = load_certificate(files.read(files.cert), where=str(files.cert))
    return SenderKey(load_private_key(files.key, passphrase), [cert])


def load_receiver(party: Path, passphrase: bytes) -> tuple[ReceiverKey, x509.Certificate]:
    """The sealing identity in a party directory: the key that opens files, and its
    certificate (to hand to senders, or to carry as the reply certificate)."""
    files = PartyFiles(party)
    cert = load_certificate(files.read(files.cert), where=str(files.cert))
    recipient = Recipient.from_certificate(cert)  # checks keyUsage keyAgreement
    key = load_private_key(files.key, passphrase)
    receiver = ReceiverKey(key, oin_of(cert))
    if receiver.key_id != recipient.key_id:
        raise SignerRefused(f"{files.key}: the key does not belong to {files.cert}")
    return receiver, cert


def load_recipient(path: Path) -> Recipient:
    """The recipient a sealing certificate file names (``uwv-sealing/cert.pem``)."""
    return Recipient.from_certificate(load_certificate(path.read_bytes(), where=str(path)))


def trust_anchors(party: Path) -> list[x509.Certificate]:
    """The CA bundle of a party directory."""
    files = PartyFiles(party)
    return load_certificates(files.read(files.ca_bundle), where=str(files.ca_bundle))


def senders_from_registry(
    registry: Registry, anchors: Iterable[x509.Certificate], clock: Callable[[], datetime]
) -> TrustedSenders:
    """UWV's view: the registry's organisations, each allowed the kinds its roles give."""
    table: dict[str, frozenset[MessageKind]] = {}
    for org in registry.organisations:
        kinds: frozenset[MessageKind] = frozenset()
        for role in org.roles:
            kinds |= KINDS_BY_ROLE.get(role, frozenset())
        if kinds:
            table[org.oin] = kinds
    return TrustedSenders(list(anchors), table, clock)


def replies_from(
    oin: str, anchors: Iterable[x509.Certificate], clock: Callable[[], datetime]
) -> TrustedSenders:
    """SVB's view of a reply: only from ``oin``, the organisation the request was sealed to."""
    return TrustedSenders(list(anchors), {oin: REPLY_KINDS}, clock)
