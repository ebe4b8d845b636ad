"""``python -m engine``: the ``ctxbudget`` command line (``--version`` is answered before anything else is imported:
:mod:`engine.cli` itself imports only ``gc`` and ``sys``)."""

import sys

from engine.cli import main

sys.exit(main())
