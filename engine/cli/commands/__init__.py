"""One module per ``ctxbudget`` command (see :mod:`engine.cli` for the convention)."""
