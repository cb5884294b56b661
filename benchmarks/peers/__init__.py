"""Peer implementations of the same job (one bit per household: total below threshold?).

Each peer is a standalone script run as a child process, possibly under another interpreter
(OpenFHE's wheel is built for Python 3.10, concrete-python needs numpy < 2), so it imports
nothing from this project. It prints one JSON object (see ``common.py``) on its last line.
"""
