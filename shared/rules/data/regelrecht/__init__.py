"""The AIO income test as a RegelRecht document and its binding file (package data)."""
