"""SVB's side: household input, keys, the batch pipeline with its journal, outreach export.

- :mod:`svb_client.households`  read and validate the household file (CSV or Parquet)
- :mod:`svb_client.keys`        the HE secret key, encrypted at rest
- :mod:`svb_client.schemes`     the HE modes as SVB runs them (encrypt, decide)
- :mod:`svb_client.journal`     SQLite journal: a batch resumes without loss or duplicates
- :mod:`svb_client.pipeline`    the screening batch, one pipeline for the three modes
- :mod:`svb_client.wire`        the transport seam; the only client code touching protobuf
- :mod:`svb_client.cli`         ``svb-client screen | keys | rules``
"""
