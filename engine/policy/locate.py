"""Which policy a command uses — ``--policy``, else ``$CTXBUDGET_POLICY``, else ``./ctxbudget.yaml``, else the
bundled default — reading its bytes within the size a policy may have (from regular files only, never
blocking), and what a path written in a policy may expand to (``usage_log``)."""

from __future__ import annotations

import errno
import os
import stat

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    import re
    from typing import Mapping

from engine.resources import bundled_policy

ENV_VAR = "CTXBUDGET_POLICY"
LOCAL_FILE = "ctxbudget.yaml"
MAX_BYTES = 1 << 20  # 1 MiB: a policy of 3,000 signals is about 300 KB


def locate_policy(path: str | os.PathLike | None = None) -> str:
    """The path of the policy file to load. ``path`` may also name a bundled policy (``default``)."""
    chosen = os.fspath(path) if path not in (None, "") else os.environ.get(ENV_VAR) or None
    if chosen is not None:
        if not os.path.exists(chosen):
            bundled = bundled_policy(chosen)
            if bundled is not None:
                return bundled
        return chosen
    if os.path.isfile(LOCAL_FILE):
        return LOCAL_FILE
    default = bundled_policy("default")
    if default is None:  # pragma: no cover - a broken installation
        raise FileNotFoundError("the bundled default policy is missing from the installation")
    return default


def display_path(path: str | os.PathLike) -> str:
    """A path as a person wants to read it: relative to the working directory when under it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive
        return os.fspath(path)
    return os.fspath(path) if rel == ".." or rel.startswith(".." + os.sep) else rel


class NotRegularFile(OSError):
    """The path names a FIFO, a device or a socket where a regular file must be (a folder: IsADirectoryError).

    ``strerror`` says what it is (``is a FIFO, not a regular file``), so callers that print
    ``exc.strerror`` say the right thing.
    """


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, as a person says it: ``a FIFO``, ``a directory``, ``a character device``…"""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def not_regular(path: str | os.PathLike, mode: int) -> OSError:
    """The error for ``path`` being something other than a regular file (IsADirectoryError for a folder)."""
    if stat.S_ISDIR(mode):
        return IsADirectoryError(errno.EISDIR, "is a directory, not a regular file", os.fspath(path))
    return NotRegularFile(errno.EINVAL, f"is {file_kind(mode)}, not a regular file", os.fspath(path))


def _refuse_not_regular(path: str | os.PathLike) -> None:
    """Before opening: a device may act on being opened, so it never is."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise not_regular(path, mode)


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)


def read_bytes(path: str | os.PathLike, limit: int = MAX_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit + 1`` of them (one byte over tells).

    Never blocks and never opens what is not a regular file: the path is checked before it is opened, and
    the open descriptor again (``O_NONBLOCK``, so a FIFO swapped in between cannot hang the open either).
    Raises :class:`NotRegularFile` (an OSError) for FIFOs, devices and sockets, IsADirectoryError for a folder.
    """
    _refuse_not_regular(path)
    fd = os.open(path, _READ_FLAGS)
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode):
            raise not_regular(path, now.st_mode)
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# -- paths a policy writes (usage_log) ---------------------------------------------------------------------

LOG_SUFFIX = ".jsonl"
"""A usage log's name ends with this; nothing else is ever appended to."""

# Compiled when a path has a `$` (re is not imported by a warm `budget` otherwise: engine/jsonio.py says why)
_VARIABLE = r"\$(?:\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))"
_ALLOWED_VARIABLE = r"HOME|XDG_[A-Z0-9_]+|CTXBUDGET_[A-Z0-9_]+"
_XDG_DEFAULTS = {"XDG_STATE_HOME": (".local", "state"), "XDG_DATA_HOME": (".local", "share"),
                 "XDG_CONFIG_HOME": (".config",), "XDG_CACHE_HOME": (".cache",)}


def sync_folder(folder: str | os.PathLike) -> None:
    """Make a rename in ``folder`` durable (best effort: not every platform or file system opens or fsyncs a
    folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def policy_path_problem(text: str) -> str | None:
    """Why ``text``, a path written in a policy, may not be expanded (a message), or None.

    Only ``~`` (the user's home) and the variables ``$HOME``, ``$XDG_*`` and ``$CTXBUDGET_*`` expand in a
    policy's paths; any other ``$VAR`` (or ``~user``) is refused rather than left literal, so that a secret in
    the environment can never end up in a file name, and a typo is not silently a folder called ``$HOEM``.
    """
    if text.startswith("~") and not (text == "~" or text.startswith("~/")):
        user = text[1:].split("/", 1)[0]
        return f"only ~ (your own home) expands in a policy's paths, not ~{user}"
    if "$" not in text:
        return None
    import re

    for match in re.finditer(_VARIABLE, text):
        name = match.group(1) if match.group(1) is not None else match.group(2)
        if not re.fullmatch(_ALLOWED_VARIABLE, name):
            return (f"only $HOME, $XDG_* and $CTXBUDGET_* expand in a policy's paths, not {match.group()} "
                    f"(write the path out, or pass --log / set $CTXBUDGET_LOG)")
    return None


def log_path_problem(text: str) -> str | None:
    """Why ``text`` may not be a policy's ``usage_log`` (a message), or None."""
    if not text.endswith(LOG_SUFFIX) or text.endswith("/" + LOG_SUFFIX) or text == LOG_SUFFIX:
        return f"a usage log is a JSONL file: its name must end in {LOG_SUFFIX}, not {os.path.basename(text)!r}"
    return policy_path_problem(text)


def expand_policy_path(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with ``~``, ``$HOME``, ``$XDG_*`` and ``$CTXBUDGET_*`` expanded (an unset ``$XDG_*_HOME`` is its
    XDG default under the home folder). ValueError for any other variable, ``~user`` or an unset variable."""
    environ = os.environ if environ is None else environ
    why = policy_path_problem(text)
    if why:
        raise ValueError(why)
    home = environ.get("HOME") or os.path.expanduser("~")

    def value(match: "re.Match") -> str:
        name = match.group(1) if match.group(1) is not None else match.group(2)
        found = environ.get(name) or (home if name == "HOME" else None)
        if not found and name in _XDG_DEFAULTS:
            found = os.path.join(home, *_XDG_DEFAULTS[name])
        if not found:
            raise ValueError(f"{match.group()} is not set")
        return found

    if text == "~" or text.startswith("~/"):
        text = home + text[1:]
    if "$" not in text:
        return text
    import re

    return re.sub(_VARIABLE, value, text)
