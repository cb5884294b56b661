"""Who may call what: the caller's identity from its verified certificate, and one table
from RPC to the roles that may call it.

- Identity: the TLS handshake has verified the client's certificate against UWV's CA bundle
  (mutual TLS, :mod:`shared.pki.tls`); :func:`shared.pki.identity_from_auth_context` reads
  the organisation and OIN from it and checks its validity at the injected clock. No message
  field is ever taken as the caller's identity.
- Roles: UWV's key registry maps the OIN to network roles (``organisations:``,
  :meth:`shared.crypto.registry.Registry.roles_for`); an OIN that is not listed has none.
- Authorisation: :data:`ROLES_OF`, deny by default. A method not in the table is refused.
  Approving rules is not in it for anyone: approvals are signed offline (``uwv-server rules
  approve``) and never accepted over the network.

The interceptor wraps every handler; the servicers read the caller with
:func:`uwv_server.grpc.runtime.caller_of` (a context variable set for the call's task).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Final

import grpc

from shared.crypto.registry import AccessRole, Registry
from shared.errors import Error
from shared.pki import Identity, PkiError, identity_from_auth_context
from uwv_server.grpc.runtime import CURRENT_IDENTITY, Context

log = logging.getLogger("uwv_server.auth")

Clock = Callable[[], datetime]

SCREENER: Final = frozenset({AccessRole.SCREENER})
AUDITOR: Final = frozenset({AccessRole.AUDITOR, AccessRole.OPERATOR})
ANYONE_AUTHENTICATED: Final = frozenset(AccessRole)
"""Health and reflection: any organisation with a trusted certificate (a load balancer's or
monitoring certificate needs a registry entry with any role)."""

ROLES_OF: Final[Mapping[str, frozenset[AccessRole]]] = {
    # SVB: screen (HE modes), upload its public context
    "/eligibility.v2.ScreeningService/GetServerInfo": SCREENER,
    "/eligibility.v2.ScreeningService/UploadContext": SCREENER,
    "/eligibility.v2.ScreeningService/HasContext": SCREENER,
    "/eligibility.v2.ScreeningService/ProposeKeySets": SCREENER,
    "/eligibility.v2.ScreeningService/OpenKeySets": SCREENER,
    "/eligibility.v2.ScreeningService/Screen": SCREENER,
    # SVB: submit rules and run approved ones on UWV's data
    "/eligibility.v2.ComputeToDataService/GetEnclaveInfo": SCREENER,
    "/eligibility.v2.ComputeToDataService/SubmitRule": SCREENER,
    "/eligibility.v2.ComputeToDataService/GetRule": SCREENER,
    "/eligibility.v2.ComputeToDataService/Run": SCREENER,
    # the auditor (and UWV's operator tools): read the log, take checkpoints to witness
    "/eligibility.v2.AuditLogService/GetLogKey": AUDITOR,
    "/eligibility.v2.AuditLogService/GetCheckpoint": AUDITOR,
    "/eligibility.v2.AuditLogService/GetEntries": AUDITOR,
    "/eligibility.v2.AuditLogService/GetInclusionProof": AUDITOR,
    "/eligibility.v2.AuditLogService/GetConsistencyProof": AUDITOR,
    # operational
    "/grpc.health.v1.Health/Check": ANYONE_AUTHENTICATED,
    "/grpc.health.v1.Health/Watch": ANYONE_AUTHENTICATED,
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": ANYONE_AUTHENTICATED,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": ANYONE_AUTHENTICATED,
}


class NotAuthenticated(Error):
    """The caller has no valid identity (no or an unusable certificate)."""


class NotAuthorised(Error):
    """The caller's roles do not include one the method needs."""


def _names(roles: frozenset[AccessRole]) -> str:
    return " or ".join(sorted(r.value for r in roles)) or "none"


class Authoriser:
    """The identity of a call and the check of :data:`ROLES_OF`."""

    def __init__(
        self,
        registry: Registry,
        clock: Clock,
        table: Mapping[str, frozenset[AccessRole]] = ROLES_OF,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.table = table

    def check(self, method: str, context: Context) -> Identity:
        """The caller's identity if it may call ``method``; raises otherwise."""
        try:
            auth = {k: list(v) for k, v in context.auth_context().items()}
            identity = identity_from_auth_context(auth, now=self.clock())
        except PkiError as exc:
            raise NotAuthenticated(exc.diagnostics()) from None
        needed = self.table.get(method)
        if needed is None:
            raise NotAuthorised(f"{method} is not open to any organisation over the network")
        roles = self.registry.roles_for(identity)
        if not roles & needed:
            raise NotAuthorised(
                f"{method} needs the role {_names(needed)}; {identity} has "
                f"{_names(roles) if roles else 'no role in UWV registry'}"
            )
        return identity


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Authenticates and authorises every call before its handler runs."""

    def __init__(self, authoriser: Authoriser) -> None:
        self._auth = authoriser

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        return _wrap(handler, lambda context: self._admit(method, context))

    async def _admit(self, method: str, context: Context) -> None:
        try:
            identity = self._auth.check(method, context)
        except NotAuthenticated as exc:
            log.warning("refused %s: %s (peer %s)", method, exc, context.peer())
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.diagnostics())
        except NotAuthorised as exc:
            log.warning("refused %s: %s", method, exc)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, exc.diagnostics())
        CURRENT_IDENTITY.set(identity)


Admit = Callable[[Context], Awaitable[None]]


def _wrap(
    handler: grpc.RpcMethodHandler[Any, Any], admit: Admit
) -> grpc.RpcMethodHandler[Any, Any]:
    """The same handler, admitting the call first (in the call's own task)."""
    h: Any = handler
    ser = {
        "request_deserializer": h.request_deserializer,
        "response_serializer": h.response_serializer,
    }
    if h.unary_unary is not None:
        inner_uu = h.unary_unary

        async def unary_unary(request: Any, context: Context) -> Any:
            await admit(context)
            return await inner_uu(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **ser)
    if h.stream_unary is not None:
        inner_su = h.stream_unary

        async def stream_unary(requests: Any, context: Context) -> Any:
            await admit(context)
            return await inner_su(requests, context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, **ser)
    inner_stream = h.unary_stream if h.unary_stream is not None else h.stream_stream

    async def streaming(request: Any, context: Context) -> AsyncIterator[Any]:
        await admit(context)
        result = inner_stream(request, context)
        if hasattr(result, "__aiter__"):
            async for response in result:
                yield response
        else:  # a handler that writes with context.write() and returns a coroutine
            await result

    if h.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(streaming, **ser)
    return grpc.stream_stream_rpc_method_handler(streaming, **ser)
