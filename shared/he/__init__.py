"""Homomorphic encryption for the AIO screening.

- :mod:`shared.he.params`   named parameter sets (security level, depth, precision)
- :mod:`shared.he.backend`  the typed facade over TenSEAL: the only module that imports it
- :mod:`shared.he.masked`   the masked comparison protocol (client encoding, server evaluation)
"""
