"""UWV's gRPC layer: thin adapters proto → domain → service → proto, one per service.

- :mod:`uwv_server.grpc.screening`        Screening (HE modes: masked, strict)
- :mod:`uwv_server.grpc.compute_to_data`  ComputeToData (rules run on UWV's data)
- :mod:`uwv_server.grpc.audit`            AuditLog (checkpoints, entries, proofs)
- :mod:`uwv_server.grpc.errors`           the one table domain error → status + ErrorDetail
- :mod:`uwv_server.grpc.server`           the server builder (health, reflection, services)

No domain logic lives here: validation, charging and evaluation are in the service classes.
"""
