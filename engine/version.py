"""The version of ctxbudget: the one place it is written (pyproject.toml reads it; ``engine.__version__``)."""

__version__ = "0.1.0"
