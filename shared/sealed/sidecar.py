"""The sidecar: what a file-transfer channel needs to know about a sealed file, as JSON.

Digikoppeling's large-message profile (Koppelvlakstandaard Grote Berichten, 3.8) sends a
metadata message beside each large file with its ``filename``, ``size``, ``checksum``,
``contentType`` and ``creationTime``, between parties named by OIN. The sidecar carries those
fields under the same names (checksum as SHA-256), plus the sender's and receiver's OIN and the
message id and kind, so an operator can fill that metadata message, or any other transfer's
manifest, without opening the file. It is written next to the file as ``<file>.meta.json``.

The sidecar is not signed: it is a label for the transport. The receiver trusts the sealed
file itself; :func:`check_sidecar` only confirms that the label and the file agree, so a
mixed-up transfer is caught before a long read.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.sealed import layout
from shared.sealed.errors import SidecarMismatch
from shared.sealed.header import Hex64, InReplyTo, MessageId, MessageKind, Oin
from shared.sealed.writer import SealedSummary

SIDECAR_SUFFIX: Final = ".meta.json"


class Checksum(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["SHA-256"] = "SHA-256"
    value: Hex64


class Party(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    oin: Oin


class Sidecar(BaseModel):
    """The sidecar of one sealed file."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    profile: Literal["aio-sealed/1"] = "aio-sealed/1"
    filename: Annotated[str, Field(min_length=1, max_length=255)]
    size: int = Field(ge=0)
    checksum: Checksum
    content_type: str = Field(alias="contentType", default=layout.SEALED_CONTENT_TYPE)
    payload_content_type: str = Field(alias="payloadContentType")
    creation_time: str = Field(alias="creationTime")
    sender: Party
    receiver: Party
    message_id: MessageId = Field(alias="messageId")
    kind: MessageKind
    in_reply_to: InReplyTo | None = Field(alias="inReplyTo", default=None)

    @classmethod
    def of(cls, filename: str, summary: SealedSummary) -> Sidecar:
        h = summary.header
        return cls(
            filename=filename,
            size=summary.size,
            checksum=Checksum(value=summary.sha256),
            payload_content_type=h.content_type,
            creation_time=h.created,
            sender=Party(oin=h.sender.oin),
            receiver=Party(oin=h.receiver.oin),
            message_id=h.message_id,
            kind=h.kind,
            in_reply_to=h.in_reply_to,
        )

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), indent=2) + "\n"


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def write_sidecar(path: Path, summary: SealedSummary) -> Path:
    """Write ``<path>.meta.json`` for the sealed file at ``path`` (atomically); its path."""
    target = sidecar_path(path)
    tmp = target.with_name(target.name + ".partial")
    with tmp.open("w") as f:
        f.write(Sidecar.of(path.name, summary).to_json())
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(target)
    return target


def read_sidecar(path: Path) -> Sidecar:
    """The sidecar at ``path``; :class:`SidecarMismatch` if it does not parse."""
    try:
        return Sidecar.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise SidecarMismatch(f"{path}: cannot read the sidecar: {exc.strerror}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "sidecar"
        raise SidecarMismatch(f"{path}: field {where}: {err['msg']}") from None


def check_sidecar(path: Path, sidecar: Sidecar) -> None:
    """Confirm the file at ``path`` has the sidecar's size and SHA-256 (read in 1 MiB blocks)."""
    size = path.stat().st_size
    if size != sidecar.size:
        raise SidecarMismatch(
            f"{path}: {size} bytes, its sidecar says {sidecar.size}: the transfer is incomplete "
            "or the sidecar belongs to another file"
        )
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != sidecar.checksum.value:
        raise SidecarMismatch(
            f"{path}: SHA-256 {h.hexdigest()[:16]}…, its sidecar says "
            f"{sidecar.checksum.value[:16]}…: the file was altered in transfer"
        )
