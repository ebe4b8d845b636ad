"""The one renderer: a command answers with a :class:`Result`; this module prints it in the format the command
line chose (``--format``, added by :func:`engine.cli.options.add_format`).

- ``json``: the result's data as JSON, generated from the records it holds (:func:`engine.records.to_json`),
  indented, strict (:func:`engine.cli.output.print_json`). Nothing command-specific.
- any other name (``text``, ``md``, ``html``, ``github``, ``paths``): the command module's
  ``render_NAME(result, args)``. ``tests/test_cli_render.py`` checks that every format a command offers has one.

Errors are not results: a command raises (PolicyError, LookupFailed, UsageError) and :func:`engine.cli.main`
renders the error, on stderr as text and, in the ``json`` format, as the one JSON error object on stdout.

Commands that stream (``detect --batch``) or talk to a person (``apply`` and ``tune`` asking before they write,
``detect -i``) print as they go and return their exit code; ``detect -i`` renders each answer through
:func:`render` too. A command that always prints as it goes says so: ``PRINTS_AS_IT_GOES = True``.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

from engine.records import Record


class Result(Record):
    """What a command answers.

    ``data`` is what ``--format json`` prints: a record, a sequence of records, or plain JSON data. ``view``
    is what the other renderings need beyond it (the policy for a profile's weights, the task text to mark
    up); it is never printed as JSON. ``exit_code``: 0, or 1 for findings (a failed example, a gate).
    """

    data: Any
    view: Any = None
    exit_code: int = 0


def render(result: Result, args: Any) -> int:
    """Print ``result`` in ``args.format`` and return its exit code."""
    fmt = getattr(args, "format", None) or "text"
    if fmt == "json":
        from engine.cli.output import print_json
        from engine.records import to_json

        print_json(to_json(result.data))
    else:
        renderer(args.run, fmt)(result, args)
    return result.exit_code


def renderer(run: Any, fmt: str) -> Any:
    """The ``render_<fmt>`` function beside a command's ``run`` (a programming error when it is missing)."""
    module = sys.modules[run.__module__]
    try:
        return getattr(module, f"render_{fmt}")
    except AttributeError:
        raise LookupError(f"{module.__name__} offers --format {fmt} but has no render_{fmt}") from None
