"""SVB's side: household input, keys, the batch runner with its journal, outreach export.

- :mod:`svb_client.households`  read and validate the household file (CSV or Parquet)
- :mod:`svb_client.keys`        the CKKS secret key, encrypted at rest
- :mod:`svb_client.journal`     SQLite journal: a batch resumes without loss or duplicates
- :mod:`svb_client.wire`        the transport seam; the only client code touching protobuf
- :mod:`svb_client.runner`      the screening batch itself
- :mod:`svb_client.cli`         ``svb-client screen | keys``
"""
