"""Benchmarks run only when asked: `pytest benchmarks/ --benchmark-enable` (timings need a quiet machine).

As in tests/conftest.py, nothing is written to the real home folder: before any benchmark module is imported,
``$HOME``, the XDG folders and ``$CTXBUDGET_CACHE_DIR`` point into a scratch folder for the session.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_SCRATCH = Path(tempfile.mkdtemp(prefix="ctxbudget-bench-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
(_SCRATCH / "home").mkdir()
for _var, _sub in (("HOME", "home"), ("XDG_CACHE_HOME", "home/.cache"), ("XDG_STATE_HOME", "home/.local/state"),
                   ("XDG_CONFIG_HOME", "home/.config"), ("XDG_DATA_HOME", "home/.local/share"),
                   ("CTXBUDGET_CACHE_DIR", "home/.cache/ctxbudget")):
    os.environ[_var] = str(_SCRATCH / _sub)
for _var in ("CTXBUDGET_POLICY", "CTXBUDGET_LOG", "CTXBUDGET_NO_CACHE"):
    os.environ.pop(_var, None)
