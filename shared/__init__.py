"""Common library of the AIO screening service, used by SVB's client and UWV's server.

Sub-packages, one concept each:

- :mod:`shared.bsn`      the BSN type (nine digits, elfproef)
- :mod:`shared.models`   households, polis records, periods
- :mod:`shared.norms`    the AIO norm table, kept as data with its legal source
- :mod:`shared.oracle`   the plaintext reference decision (tests and benchmarks only)
- :mod:`shared.he`       homomorphic encryption: the TenSEAL facade and the masked protocol
- :mod:`shared.rules`    the rule language (issue 4)
- :mod:`shared.audit`    the transparency log (issue 6)
"""
