"""UWV's side: the polis store, the screening service and its gRPC adapter.

- :mod:`uwv_server.store`     polis snapshots, DuckDB over Parquet
- :mod:`uwv_server.synth`     seeded synthetic polis and matching SVB household file
- :mod:`uwv_server.service`   the screening service (domain: chunk in, ciphertext out)
- :mod:`uwv_server.grpc`      the gRPC layer: one adapter per service, one error table
- :mod:`uwv_server.cli`       ``uwv-server load | generate | serve``
"""
