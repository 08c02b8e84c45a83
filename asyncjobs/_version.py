"""The asyncjobs version, written here once: reading it from the installed metadata
(importlib.metadata) cost every worker and CLI start 15-25 ms. tests/test_packaging.py holds it
equal to pyproject.toml's version and to the installed distribution's."""

VERSION = "0.1.0"
