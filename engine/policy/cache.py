"""A cache of validated policies, so a command that only *uses* a policy skips YAML, the schema and the
expression parser (about 150 ms of imports) when the policy has not changed.

An entry is keyed by the policy file's resolved path and the SHA-256 of its bytes, and lists every file of its
``extends`` chain with their hashes; it is used only when all of them still hash the same. It holds the merged,
validated policy data and whatever compiled artefacts :meth:`Policy.from_data` hands back (``artifacts``),
as JSON. A stale, corrupt or unreadable entry is a miss; an unwritable cache directory means no caching —
never an error.

``$CTXBUDGET_CACHE_DIR`` moves the cache (default ``$XDG_CACHE_HOME/ctxbudget`` or ``~/.cache/ctxbudget``);
``CTXBUDGET_NO_CACHE=1`` turns it off.
"""

from __future__ import annotations

import json
import os
from typing import Any

from engine import __version__

try:  # CPython's own SHA-256: `hashlib` first initialises OpenSSL, ~3 ms of every start
    from _sha256 import sha256  # Python 3.11
except ImportError:  # pragma: no cover - other versions and interpreters
    try:
        from _sha2 import sha256  # Python ≥ 3.12
    except ImportError:
        from hashlib import sha256

FORMAT = 2  # bump when what an entry holds changes


def cache_dir() -> str | None:
    if os.environ.get("CTXBUDGET_NO_CACHE"):
        return None
    chosen = os.environ.get("CTXBUDGET_CACHE_DIR")
    if chosen:
        return chosen
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ctxbudget")


def _sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return sha256(handle.read()).hexdigest()
    except OSError:
        return None


def entry_path(policy_file: str | os.PathLike, raw: bytes) -> str | None:
    """Where the entry for these bytes at this path lives (None when caching is off)."""
    directory = cache_dir()
    if directory is None:
        return None
    where = os.path.realpath(policy_file)
    key = sha256(f"{FORMAT}\0{__version__}\0{where}\0".encode() + raw).hexdigest()
    return os.path.join(directory, f"{key[:40]}.json")


def _python_build() -> str:
    import sys

    return sys.version  # marshal and bytecode are only good for the build that wrote them


def _restore_code(found: dict[str, Any]) -> None:
    """Hand the entry's compiled expression code to engine.expr (a miss costs only recompiling)."""
    code = found.get("code")
    if not isinstance(code, dict) or code.get("python") != _python_build():
        return
    try:
        import marshal
        from binascii import a2b_base64

        table = marshal.loads(a2b_base64(code["blob"]))
        from engine.expr.program import code_table

        code_table().update({k: v for k, v in table.items() if isinstance(k, str)})
    except (ValueError, EOFError, TypeError, KeyError):
        pass


def _saved_code() -> dict[str, str] | None:
    import sys

    program = sys.modules.get("engine.expr.program")
    if program is None:
        return None
    import marshal
    from binascii import b2a_base64

    blob = b2a_base64(marshal.dumps(dict(program.code_table())), newline=False).decode("ascii")
    return {"python": _python_build(), "blob": blob}


def read(entry: str | None) -> dict[str, Any] | None:
    """The cached entry if it is whole and every file it came from is unchanged; else None."""
    if entry is None:
        return None
    try:
        with open(entry, encoding="utf-8") as handle:
            found = json.load(handle)
        if found.get("format") != FORMAT or found.get("version") != __version__:
            return None
        files = found["files"]
        if any(_sha256(path) != digest for path, digest in files[1:]):  # files[0] is in the key
            return None
        if not isinstance(found["data"], dict):
            return None
        _restore_code(found)
        return found
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write(entry: str | None, source: str, files: list, data: dict, artifacts: dict) -> None:
    """Store an entry atomically (write a temporary file, then rename); give up quietly on any OS error."""
    if entry is None:
        return
    payload = {"format": FORMAT, "version": __version__, "source": source, "files": files, "data": data,
               "artifacts": artifacts, "code": _saved_code()}
    import tempfile

    try:
        os.makedirs(os.path.dirname(entry), exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=os.path.dirname(entry), prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(payload, out, ensure_ascii=False, separators=(",", ":"))
            os.replace(temp, entry)
        except BaseException:
            os.unlink(temp)
            raise
    except (OSError, TypeError, ValueError):
        pass
