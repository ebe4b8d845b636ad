"""Writing a file the adapter owns in one step: a temporary file in the same folder, then a rename, so a
reader (Claude Code, an editor) sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile


def write_atomically(path: str, text: str, mode: int, prefix: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8, its line endings written as they are) at ``mode``; the temporary
    file is removed on any failure."""
    folder = os.path.dirname(path) or "."
    fd, temp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
