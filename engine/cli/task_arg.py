"""The TASK argument of ``evaluate`` and ``detect`` when it is ``-``: the task, read from stdin.

A task passed as an argument is capped by the operating system (one argument of at most 128 KiB on Linux);
on stdin it may be up to :data:`MAX_TASK_BYTES`. The read is bounded: a larger input is refused after
reading one byte more than the bound, never read whole.
"""

from __future__ import annotations

MAX_TASK_BYTES = 1 << 20  # 1 MiB of UTF-8: a task description, not a document


def task_text(value: str) -> str:
    """``value``, or for ``-`` the task read from stdin (stripped); UsageError when it cannot be one."""
    if value != "-":
        return value
    import sys

    from engine.diagnostics import UsageError

    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise UsageError("TASK '-': there is no stdin to read the task from")
    try:
        raw = stream.read(MAX_TASK_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"TASK '-': cannot read stdin: {exc.strerror or exc}") from None
    if len(raw) > MAX_TASK_BYTES:
        raise UsageError(f"TASK '-': the task on stdin is larger than {MAX_TASK_BYTES:,} bytes "
                         f"({MAX_TASK_BYTES >> 20} MiB); give a task description, not a document")
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise UsageError(f"TASK '-': stdin is not UTF-8 text (byte {exc.start + 1}: {exc.reason})") from None
    if not text:
        raise UsageError("TASK '-': stdin holds no task (it is empty)")
    return text
