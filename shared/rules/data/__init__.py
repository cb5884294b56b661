"""The rules shipped with the package (package data, read through :mod:`importlib.resources`):
``aio.yaml``, the AIO income test, and ``regelrecht/``, the same law as a RegelRecht document
with its binding file. See :mod:`shared.rules.shipped`."""
