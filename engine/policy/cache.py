"""A cache of validated policies, so a command that only *uses* a policy skips YAML, the schema and the
semantic checks (about 150 ms of imports) when the policy has not changed.

**One artifact, data only.** An entry is an :class:`Entry`, written and read only here: the merged,
validated policy data and what compiling it worked out (:attr:`engine.policy.Policy.artifacts`: the detection
plan — patterns and word forms —, which file wrote each golden example, where each recommendation rule is
written, the budget formula's value for every profile or agent at every tier), as plain JSON — never code: no
generated Python, no bytecode. Expressions are compiled from their source when first used (what that costs is
measured by benchmarks/bench_cache.py and quoted in docs/security.md); with the budget table a warm allocation
compiles none. So the worst a tampered entry can do is what a tampered policy can do.

**Trusted only when it is yours** (the rule ssh applies to ``~/.ssh``): the cache folder and the entry must be
owned by the current user, must not be symbolic links, and must be writable by nobody else (no group or
other write bit); the entry must be a regular file. The folder is opened once with ``O_NOFOLLOW`` and
everything else is done relative to that descriptor, each entry opened with ``O_NOFOLLOW`` and checked with
``fstat`` on the open descriptor, so nothing can be swapped between the check and the use. When a check fails
the cache is not used at all (not read, not written) for the rest of the process, and one warning on stderr
says why. A missing folder is created with mode 0700.

**Keyed by everything it came from.** The entry's name is a hash of the policy file's resolved path; inside,
every file of the ``extends`` chain is listed with the SHA-256 of its bytes and its :func:`stamp` when it was
hashed, and for every ``extends:`` reference the places that reference could resolve to (the path beside the
referring file, with and without a ``.yaml``/``.yml``/``.json`` suffix, and the bundled policy of that name),
with what each resolved to when the entry was written. An entry is used only when every file has the same
bytes and every one of those places still resolves the same way — so a parent re-pointed by a symlink, or a
new local file that shadows a bundled name, is a miss. A file whose stamp is the recorded one is not read,
when it had :func:`settled` (changed :data:`SETTLED_NS` or more before it was hashed: git's rule for racily
clean files); any other is hashed, and once all are settled the entry is refreshed with their stamps.

**What validation said.** An entry also records, as data, that the policy was valid when it was written and
the warnings the check gave (``checked``: the problems as ``Problem.to_dict()``, with the label the policy was
checked under, the working folder — problems name parent files relative to it — and a fingerprint of the
checking code: the size and modification time of each module of ``engine`` and of the schema). ``ctxbudget
validate`` answers from it when all of those are the same now; otherwise it checks afresh.

**Whole or nothing; sections checked when read.** An entry is one line, ``FORMAT <SHA-256 of the head>
<head bytes> <body bytes>``, then the head — everything above, as JSON: the policy data without its signals,
the artifacts, and the tables of the body's sections — then the body (:mod:`engine.policy.sections`: the
signals, the detection plan's head, its entries and word index, in chunks with their own checksums). Only the
first line and the head are read up front (the body's sections are read from the open entry, an
:class:`engine.policy.sections.OpenBody`, when first needed); its size must be exactly what the first line says, and the head must match its
checksum, decode and have every field of the right shape (the tables within the body), else it is a miss,
and a miss is rewritten (atomically: a temporary file, then a rename). ``budget`` and ``validate`` read no
section. The plan's head is checked and decoded when detection first needs it (:class:`StoredPlan`; one that
fails is not used — the detector plans afresh — and its entry is removed, so the next start rewrites it), and
each chunk when a task first reads it; a chunk that fails is served from the policy compiled afresh and the
entry rewritten (:class:`engine.policy.sections.Recovery`).

**Bounded.** After each write only the :data:`MAX_ENTRIES` most recently used entries are kept (an entry's
time is refreshed when it is used, at most hourly); temporary files left by a killed process are removed after
an hour.

``$CTXBUDGET_CACHE_DIR`` moves the cache (default ``$XDG_CACHE_HOME/ctxbudget`` or ``~/.cache/ctxbudget``);
``CTXBUDGET_NO_CACHE=1`` turns it off. Where the platform has no ``O_NOFOLLOW`` or ``geteuid`` (Windows),
there is no cache.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from itertools import chain
from operator import itemgetter

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

from engine.digest import sha256
from engine.jsonio import loads_own
from engine.policy import sections
from engine.records import Record
from engine.version import __version__


FORMAT = 10  # bump when what an entry holds changes
MAX_ENTRIES = 32  # entries kept after a write (the most recently used)
MAX_ENTRY_BYTES = 16 << 20  # an entry is about twice its policy's size, and a policy is at most 1 MiB
STALE_TEMP_SECONDS = 3600  # a temporary file this old was left by a killed process
TOUCH_SECONDS = 3600  # a used entry's time is refreshed when it is older than this
SUFFIX = ".entry"
PLAN_FORMAT = 6  # engine.detect.plan.PLAN_FORMAT, not imported: `budget` loads nothing of detection (a test checks)
_KEY_CHARS = 40
_PARENT_SUFFIXES = (".yaml", ".yml", ".json")

_SUPPORTED = (hasattr(os, "O_NOFOLLOW") and hasattr(os, "geteuid") and os.open in os.supports_dir_fd
              and os.scandir in os.supports_fd)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

# Once one check fails, the cache stays off for the rest of the process (and the warning is not repeated).
_distrust: list[str] = []


class Entry(Record):
    """What the cache keeps of a checked policy: data only (see the module's docstring)."""

    source: str
    """The label the policy was checked under."""
    files: tuple[tuple[str, str], ...]
    """The ``extends`` chain: (real path, SHA-256 of the bytes), the policy's own file first."""
    data: dict
    """The merged, validated policy data."""
    artifacts: dict
    """:attr:`engine.policy.Policy.artifacts` (the detection plan with its conditions left out, compiled from
    source when used — read from an entry, a :class:`StoredPlan`, decoded on first use; the examples' origins;
    the rules' positions; the budget table)."""
    checked: dict | None = None
    """What validation said (:func:`checked_record`)."""


class Untrusted(Exception):
    """The cache folder or an entry fails the ownership rule; the message says which and why."""


def cache_dir() -> str | None:
    """The cache folder, or None when caching is off."""
    if os.environ.get("CTXBUDGET_NO_CACHE") or not _SUPPORTED:
        return None
    chosen = os.environ.get("CTXBUDGET_CACHE_DIR")
    if chosen:
        return chosen
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ctxbudget")


def entry_path(policy_file: str | os.PathLike) -> str | None:
    """Where the entry for the policy at this path lives (None when caching is off or not trusted)."""
    directory = cache_dir()
    if directory is None or _distrust:
        return None
    where = os.path.realpath(policy_file)
    key = sha256(f"{FORMAT}\0{__version__}\0{where}".encode("utf-8", "surrogateescape")).hexdigest()  # any name
    return os.path.join(directory, key[:_KEY_CHARS] + SUFFIX)


SETTLED_NS = 3_000_000_000
"""How long before it was hashed a file must have last changed (its modification and status-change times) for
its stamp to stand for its bytes: a change within the clock's granularity of the hashing could leave the stamp
as it was (git's "racily clean" files). 3 s covers coarse file-system clocks (FAT's 2 s) with room to spare."""


def stamp(path: str) -> list[int] | None:
    """What a file's status says of its bytes: [size, modification time, inode, status-change time] (ns);
    None when it cannot be read."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


def settled(found: list[int], hashed_at: int) -> bool:
    """Whether a file with stamp ``found``, hashed at ``hashed_at`` (ns since the epoch), had last changed
    :data:`SETTLED_NS` before: then a later change of its bytes changes its stamp."""
    return found[1] + SETTLED_NS <= hashed_at and found[3] + SETTLED_NS <= hashed_at


# -- trust ------------------------------------------------------------------------------------------------------

def _check_owner(st: os.stat_result, what: str) -> None:
    """Raise Untrusted unless ``st`` is owned by the current user and writable by nobody else."""
    me = os.geteuid()
    if st.st_uid != me:
        raise Untrusted(f"{what} is owned by uid {st.st_uid}, not by you (uid {me})")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = " and ".join(w for bit, w in ((stat.S_IWGRP, "group"), (stat.S_IWOTH, "others")) if st.st_mode & bit)
        raise Untrusted(f"{what} is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o})")


def _warn(reason: str) -> None:
    """Turn the cache off for this process, saying why once."""
    if not _distrust:
        sys.stderr.write(f"ctxbudget: warning: not using the compiled-policy cache: {reason}; it must be yours, "
                         "not a symbolic link, and writable by nobody else (fix or remove it, or set "
                         "CTXBUDGET_CACHE_DIR or CTXBUDGET_NO_CACHE=1)\n")
    _distrust.append(reason)


def _trusted_folder(directory: str, create: bool) -> int | None:
    """:func:`_open_folder`, or None with a warning when the folder is not to be trusted."""
    try:
        return _open_folder(directory, create)
    except Untrusted as exc:
        _warn(str(exc))
        return None


def _open_folder(directory: str, create: bool) -> int | None:
    """A descriptor of the trusted cache folder; None when it is missing (and not ``create``) or unusable.
    Raises Untrusted."""
    if create:
        try:
            parent = os.path.dirname(os.path.abspath(directory))
            os.makedirs(parent, exist_ok=True)
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return None  # cannot create it: no caching, never an error
    try:
        fd = os.open(directory, os.O_RDONLY | _DIRECTORY | _NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError:
        if os.path.islink(directory):
            raise Untrusted(f"{directory} is a symbolic link") from None
        return None  # not a folder, not reachable: no caching, never an error
    try:
        _check_owner(os.fstat(fd), directory)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_entry(folder: int, name: str, shown: str) -> int | None:
    """A descriptor of the trusted entry ``name`` in ``folder``; None when there is none. Raises Untrusted."""
    try:
        fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _NONBLOCK, dir_fd=folder)
    except FileNotFoundError:
        return None
    except OSError:
        try:
            link = stat.S_ISLNK(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
        except OSError:
            link = False
        if link:
            raise Untrusted(f"{shown} is a symbolic link") from None
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Untrusted(f"{shown} is not a regular file")
        _check_owner(st, shown)
    except BaseException:
        os.close(fd)
        raise
    return fd


# -- what an entry holds ------------------------------------------------------------------------------------------

def _is_index(value: Any) -> bool:
    return type(value) is int and value >= 0  # not a bool


_PLAN_KEYS = {"format", "patterns", "entries", "derived", "conditions", "quiet", "index", "groups", "scoped", "asks",
              "digest", "gates"}
_ENTRY_KINDS = {"literal", "exact", "regex"}


def _plan_entries_ok(entries: Any) -> bool:
    """Whether every entry is ``[signal, kind, text]`` (an index, "literal", "exact" or "regex", and a non-empty
    string). Checked column by column in C-speed passes (``map``, ``set``): a plan of 3,000 signals has some
    8,000 entries, checked on every start that detects."""
    if type(entries) is not list:
        return False
    if not entries:
        return True
    if set(map(type, entries)) != {list} or set(map(len, entries)) != {3}:
        return False
    try:
        kinds = set(map(itemgetter(1), entries))
    except TypeError:  # an unhashable kind
        return False
    thirds = list(map(itemgetter(2), entries))
    return (kinds <= _ENTRY_KINDS and set(map(type, thirds)) == {str} and all(thirds)
            and _indices_ok(list(map(itemgetter(0), entries))))


def _indices_ok(values: list) -> bool:
    """Whether ``values`` are all ints ≥ 0 (not bools)."""
    return not values or (set(map(type, values)) == {int} and min(values) >= 0)


def _strings_ok(values: list) -> bool:
    """Whether ``values`` are all non-empty strings."""
    return not values or (set(map(type, values)) == {str} and all(values))


def _plan_ok(plan: Any) -> bool:
    """Whether a cached detection plan has the shape engine.detect.plan writes (the detector checks that it
    fits the policy's signals when it is first built, and rebuilds it when not)."""
    return (isinstance(plan, dict) and set(plan) == _PLAN_KEYS
            and plan["format"] == PLAN_FORMAT
            and type(plan["patterns"]) is list and set(map(type, plan["patterns"])) <= {str}  # "": from its forms
            and isinstance(plan["entries"], list) and len(plan["entries"]) == len(plan["patterns"])
            and _plan_entries_ok(plan["entries"])
            and isinstance(plan["derived"], list) and all(_is_index(i) for i in plan["derived"])
            and plan["conditions"] == {} and _quiet_ok(plan["quiet"])
            and type(plan["index"]) is dict and set(map(type, plan["index"].values())) <= {list}
            and all(plan["index"].values()) and _indices_ok(list(chain.from_iterable(plan["index"].values())))
            and type(plan["groups"]) is list and _strings_ok(plan["groups"])
            and type(plan["scoped"]) is list and _indices_ok(plan["scoped"])
            and type(plan["asks"]) is bool and type(plan["digest"]) is str
            and type(plan["gates"]) is list and set(map(type, plan["gates"])) <= {list}
            and set(map(len, plan["gates"])) <= {2} and _indices_ok(list(map(itemgetter(0), plan["gates"])))
            and _strings_ok(list(map(itemgetter(1), plan["gates"]))))


def decode_plan(text: str | bytes) -> dict | None:
    """A detection plan written whole as JSON (as :func:`write` checks it before cutting it into sections), when
    it decodes to the shape this version writes (conditions left out: they are compiled from source); else
    None."""
    try:
        plan = loads_own(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return plan if _plan_ok(plan) else None


class StoredPlan:
    """The detection plan of an entry, as the span of its head in the entry's body
    (:mod:`engine.policy.sections`): checked against its checksum and decoded when :meth:`decode` is first
    called — by the detector, never by ``budget`` or ``validate``. A head that fails is not used (the detector
    plans afresh) and the entry is removed (the next start rewrites it); its chunks are read as detection
    needs them."""

    __slots__ = ("body", "span", "signals", "entry")

    def __init__(self, body: sections.Body, span: list, signals: int, entry: str | None):
        self.body, self.span, self.signals, self.entry = body, span, signals, entry

    def decode(self) -> dict | None:
        """The plan (:func:`engine.policy.sections.lazy_plan`), or None when its head does not match its checksum,
        decode or have the right shape."""
        head = self.body.part(*self.span)
        if sections.plan_head_ok(head, self.signals, self.body.size) and head["format"] == PLAN_FORMAT:
            return sections.lazy_plan(head, self.body)
        if self.entry is not None:
            discard(self.entry)
        return None


_quiet_ok = sections.quiet_ok


def _files_ok(files: Any) -> bool:
    return (isinstance(files, list) and bool(files)
            and all(isinstance(f, list) and len(f) == 2 and all(isinstance(s, str) and s for s in f) for f in files))


def _links_ok(links: Any, files: list) -> bool:
    """One link per ``extends`` (file i → file i+1): [referring file, reference, [[place, fact], ...]]."""
    return (isinstance(links, list) and len(links) == len(files) - 1
            and all(isinstance(link, list) and len(link) == 3 and link[0] == files[i][0]
                    and isinstance(link[1], str) and isinstance(link[2], list)
                    and all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and _fact_ok(p[1])
                            for p in link[2])
                    for i, link in enumerate(links)))


def _stamps_ok(stamps: Any, files: int) -> bool:
    """One :func:`stamp` per file of the chain: four whole numbers ≥ 0."""
    return type(stamps) is list and len(stamps) == files and all(
        type(s) is list and len(s) == 4 and all(_is_index(n) for n in s) for s in stamps)


def _fact_ok(fact: Any) -> bool:
    return fact is None or (isinstance(fact, list) and len(fact) == 2 and isinstance(fact[0], str)
                            and fact[1] in ("file", "dir", "other"))


def _origins_ok(origins: Any) -> bool:
    """Which file wrote each golden example (engine.policy.check_policy): section → one label per example."""
    return (type(origins) is dict and set(origins) <= {"budgets", "tasks"}
            and all(type(v) is list and all(type(f) is str for f in v) for v in origins.values()))


def _positions_ok(positions: Any, data: dict) -> bool:
    """Where each recommendation rule's expressions are written (engine.recommend.rules.rule_positions): one
    {field: [file, line, col]} per rule of the policy."""
    section = data.get("recommendations")
    rules = section.get("rules") if isinstance(section, dict) else None
    return (type(positions) is list and isinstance(rules, list) and len(positions) == len(rules)
            and all(type(p) is dict and set(p) <= {"when", "confidence"}
                    and all(type(at) is list and len(at) == 3 and type(at[0]) is str and _is_index(at[1])
                            and _is_index(at[2]) for at in p.values())
                    for p in positions))


def _budgets_ok(budgets: Any) -> bool:
    """The budget formula's values (engine.policy.compiled.budget_table): {"by": "profile" | "agent", "detection":
    bool, "table": {name: [whole tokens per tier]}} — names and numbers, data only."""
    return (type(budgets) is dict and budgets.keys() == {"by", "detection", "table"}
            and budgets["by"] in ("profile", "agent") and type(budgets["detection"]) is bool
            and type(budgets["table"]) is dict
            and all(type(row) is list and all(_is_index(b) for b in row) for row in budgets["table"].values()))


_PROBLEM_FIELDS = {"path": str, "line": int, "col": int, "severity": str, "rule": str, "message": str,
                   "json_path": str}


def _problem_ok(item: Any) -> bool:
    return (type(item) is dict and item.keys() == _PROBLEM_FIELDS.keys()
            and all(type(item[k]) is t for k, t in _PROBLEM_FIELDS.items()) and item["severity"] != "error")


def _checked_ok(checked: Any) -> bool:
    """What validation said when the entry was written (see the module's docstring): a valid policy's warnings."""
    return (type(checked) is dict and checked.keys() == {"label", "cwd", "checks", "problems"}
            and all(type(checked[k]) is str for k in ("label", "cwd", "checks"))
            and type(checked["problems"]) is list and all(_problem_ok(p) for p in checked["problems"]))


def checks_fingerprint() -> str:
    """A fingerprint of the code that validates a policy: the path, size and modification time of every module
    of ``engine`` and of the policy schema (a changed rule, even without a new version, is a fresh check)."""
    from engine.resources import schema_path

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parts = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                parts.append(f"{path}\0{st.st_size}\0{st.st_mtime_ns}")
    try:
        st = os.stat(schema_path())
        parts.append(f"{schema_path()}\0{st.st_size}\0{st.st_mtime_ns}")
    except OSError:
        parts.append("no schema")
    return sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def checked_record(label: str, problems: list) -> dict:
    """What to record of a check that found ``problems`` (no errors) in the policy shown as ``label``."""
    return {"label": label, "cwd": os.getcwd(), "checks": checks_fingerprint(),
            "problems": [p.to_dict() for p in problems]}


def checked_problems(found: Entry, label: str) -> list[dict] | None:
    """The problems (as dicts) a check of the policy shown as ``label`` gives now, when the entry recorded that
    same check — same label, working folder and checking code; else None (check afresh)."""
    checked = found.checked
    if checked["label"] != label:
        return None
    try:
        if checked["cwd"] != os.getcwd():
            return None
    except OSError:
        return None
    if checked["checks"] != checks_fingerprint():
        return None
    return checked["problems"]


def _is_digest(value: Any) -> bool:
    """Whether ``value`` is a SHA-256 as :func:`write` spells it (64 lower-case hexadecimal digits)."""
    return type(value) is str and len(value) == 64 and not value.strip("0123456789abcdef")


def _shape_ok(found: Any, size: int | None = None) -> bool:
    """Whether a decoded head has the shape :func:`write` gives it, for a body of ``size`` bytes (None: any)."""
    if size is None:
        size = MAX_ENTRY_BYTES
    if not (isinstance(found, dict) and found.get("format") == FORMAT and found.get("version") == __version__):
        return False
    if not _checked_ok(found.get("checked")):
        return False
    artifacts, data = found.get("artifacts"), found.get("data")
    if not (isinstance(found.get("source"), str) and isinstance(data, dict) and isinstance(artifacts, dict)
            and _files_ok(found.get("files")) and _links_ok(found.get("links"), found["files"])
            and _stamps_ok(found.get("stamps"), len(found["files"])) and _is_index(found.get("hashed_at"))):
        return False
    detection = data.get("detection")
    if detection is not None and (type(detection) is not dict or "signals" in detection):
        return False  # the signals are in the body
    stored = found.get("signals")
    planned = stored is not None  # the signals in the body, and a plan, exactly when there are signals
    if planned and not (type(stored) is dict and stored.keys() == {"count", "table"} and type(detection) is dict
                        and type(stored["count"]) is int and stored["count"] > 0
                        and sections.table_ok(stored["table"], sections.chunk_count(stored["count"]), size)):
        return False
    extends = len(found["files"]) > 1  # the examples' origins exactly when it extends another policy
    section = data.get("recommendations")
    ruled = isinstance(section, dict) and bool(section.get("rules"))  # positions exactly when it writes rules
    # the budget table is optional (left out when it would be too large, or the formula failed somewhere); its
    # fit to the profiles, agents and tiers is checked when the policy is rebuilt (a misfit is a miss)
    return (set(artifacts) - {"budgets"} == {*(["detection"] if planned else []),
                                             *(["example_origins"] if extends else []),
                                             *(["rule_positions"] if ruled else [])}
            and ("budgets" not in artifacts or _budgets_ok(artifacts["budgets"]))
            and (not planned or sections.span_ok(artifacts["detection"], size))
            and (not extends or _origins_ok(artifacts["example_origins"]))
            and (not ruled or _positions_ok(artifacts["rule_positions"], data)))


# -- the extends chain as it resolves now ------------------------------------------------------------------------

def _fact(place: str) -> list | None:
    """What ``place`` resolves to: [its real path, "file" | "dir" | "other"], or None when it does not exist."""
    try:
        mode = os.stat(place).st_mode
    except (OSError, ValueError):
        return None
    kind = "file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode) else "other"
    return [os.path.realpath(place), kind]


def _places(referrer: str, reference: str) -> list[str]:
    """Every place a parent reference written in ``referrer`` could resolve to."""
    from engine.resources import bundled_policy

    folder = os.path.dirname(referrer)
    names = [reference]
    if reference.startswith("~"):
        names.append(os.path.expanduser(reference))
    places = []
    for name in names:
        place = os.path.join(folder, name)
        places.append(place)
        if not place.endswith(_PARENT_SUFFIXES):
            places.extend(place + suffix for suffix in _PARENT_SUFFIXES)
    bundled = bundled_policy(reference) if reference else None
    if bundled is not None:
        places.append(bundled)
    return places


def _probe(referrer: str, reference: str) -> list[list]:
    return [[place, _fact(place)] for place in _places(referrer, reference)]


def _sha256(path: str) -> str | None:
    """The SHA-256 of a regular file's bytes (never blocks on a FIFO or device); None when unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return sha256(handle.read()).hexdigest()
    except OSError:
        return None
    finally:
        os.close(fd)


def _unchanged(found: dict, policy_file: str | os.PathLike | None) -> tuple[bool, list | None]:
    """Whether the entry is the one of ``policy_file`` and every file of its chain has the same bytes, and every
    reference resolves as it did; and, when some file had to be hashed to tell and all are settled now, their
    new stamps (the entry is refreshed with them). A file whose stamp is what the entry recorded when it hashed
    it, and was :func:`settled` then, is not read: its bytes are what they were."""
    files = found["files"]
    if policy_file is not None and files[0][0] != os.path.realpath(policy_file):
        return False, None
    now = time.time_ns()
    stamps, hashed_at = found["stamps"], found["hashed_at"]
    fresh, hashed = [], False
    for (path, recorded), old in zip(files, stamps):
        current = stamp(path)
        if current is None:
            return False, None
        if current != old or old is None or not settled(old, hashed_at):
            if _sha256(path) != recorded:
                return False, None
            hashed = True
        fresh.append(current)
    if not all(_probe(referrer, reference) == places for referrer, reference, places in found["links"]):
        return False, None
    refresh = [fresh, now] if hashed and all(settled(s, now) for s in fresh) else None
    return True, refresh


def _links(files: list[list[str]]) -> list[list] | None:
    """The links of a chain just loaded, or None when they cannot be worked out (then nothing is cached)."""
    from engine.policy.locate import read_bytes
    from engine.policy.yamlsource import read_document

    links = []
    for (referrer, digest), (parent, _) in zip(files, files[1:]):
        try:
            raw = read_bytes(referrer)
        except OSError:
            return None
        if sha256(raw).hexdigest() != digest:
            return None  # changed since it was loaded
        try:
            data = read_document(referrer, raw).data
        except Exception:  # noqa: BLE001 - it was valid a moment ago; whatever happened, do not cache
            return None
        reference = data.get("extends") if isinstance(data, dict) else None
        if not isinstance(reference, str):
            return None
        places = _probe(referrer, reference)
        if not any(fact is not None and fact == [parent, "file"] for _, fact in places):
            return None  # resolved in a way the probes do not see: caching it could serve a stale entry
        links.append([referrer, reference, places])
    return links


def _usable(found: Any, policy_file: str | os.PathLike | None = None, size: int | None = None) -> bool:
    """Whether a decoded entry head has the right shape (for a body of ``size`` bytes) and still describes the
    files it came from."""
    return _shape_ok(found, size) and _unchanged(found, policy_file)[0]


# -- reading and writing ----------------------------------------------------------------------------------------

def frame(head: bytes, plan: bytes = b"") -> bytes:
    """An entry's bytes: its first line (format, the head's SHA-256, the sizes), the head, the plan."""
    return f"{FORMAT} {sha256(head).hexdigest()} {len(head)} {len(plan)}\n".encode() + head + plan


_MAX_FIRST_LINE = 128


def _first_line(raw: bytes) -> tuple[bytes, int, int, int] | None:
    """From the start of an entry: the head's checksum, the sizes of the head and the body, and where the head
    starts — when its first line is this format's; else None."""
    end = raw.find(b"\n", 0, _MAX_FIRST_LINE)
    if end < 0:
        return None
    parts = raw[:end].split(b" ")
    if len(parts) != 4 or parts[0] != b"%d" % FORMAT or not all(p.isdigit() and len(p) <= 10 for p in parts[2:]):
        return None
    return parts[1], int(parts[2]), int(parts[3]), end + 1


def unframe(raw: bytes) -> tuple[bytes, bytes] | None:
    """The head and the body of an entry's bytes, when its first line is this format's, its size is what that
    line says and the head matches its checksum; else None. (Each section of the body is checked when read.)"""
    layout = _first_line(raw)
    if layout is None:
        return None
    digest, head_size, body_size, start = layout
    if start + head_size + body_size != len(raw):  # truncated, grown, or a length that lies
        return None
    view = memoryview(raw)
    if sha256(view[start:start + head_size]).hexdigest().encode() != digest:
        return None
    return raw[start:start + head_size], raw[start + head_size:]


def _read_head(fd: int, size: int) -> tuple[bytes, int, int] | None:
    """The head of the open entry of ``size`` bytes, where its body starts and the body's size, when its first
    line is this format's, the sizes add up to ``size`` and the head matches its checksum; else None. Only the
    first line and the head are read: the body's sections are read when first needed."""
    if size > MAX_ENTRY_BYTES:
        return None
    layout = _first_line(os.pread(fd, _MAX_FIRST_LINE, 0))
    if layout is None:
        return None
    digest, head_size, body_size, start = layout
    if start + head_size + body_size != size:  # truncated, grown, or a length that lies
        return None
    head = sections.pread(fd, start, head_size)
    if head is None or sha256(head).hexdigest().encode() != digest:
        return None
    return head, start + head_size, body_size


def read(entry: str | None, policy_file: str | os.PathLike | None = None, recompile: Any = None) -> Entry | None:
    """The cached :class:`Entry` (of ``policy_file``, when given) if the cache is trusted, the entry is whole, and
    everything it came from is unchanged (:func:`_unchanged`: by its files' stamps, or their bytes); else None. Its plan is a :class:`StoredPlan`, checked and decoded when first needed, and
    its signals and the plan's parts are read from sections when first needed; a section that fails is served
    from ``recompile`` (see :class:`engine.policy.sections.Recovery`)."""
    if entry is None or _distrust:
        return None
    directory, name = os.path.split(entry)
    folder = _trusted_folder(directory, create=False)
    if folder is None:
        return None
    try:
        fd = _open_entry(folder, name, entry)
        if fd is None:
            return None
        try:
            st = os.fstat(fd)
            layout = _read_head(fd, st.st_size)
            if layout is None:
                return None
            head, offset, size = layout
            found = loads_own(head)  # json.loads, without importing json (engine/jsonio.py)
            if not _shape_ok(found, size):
                return None
            same, refresh = _unchanged(found, policy_file)
            if not same:
                return None
            body = sections.OpenBody(fd, offset, size)  # it owns the descriptor from now on
            fd = None
            if refresh is not None:  # hashed, unchanged and settled now: from now on, its stamps tell
                whole = body.read(0, size)
                if whole is not None:
                    _refresh(folder, name, dict(found, stamps=refresh[0], hashed_at=refresh[1]), whole)
            artifacts = found["artifacts"]
            stored = found.get("signals")
            if bool(size) != (stored is not None):
                return None
            if time.time() - st.st_mtime > TOUCH_SECONDS:
                try:
                    os.utime(body.fd)  # used: keep it among the newest
                except OSError:
                    pass
            if stored is not None:  # the sections of the body, each read when first needed
                source: sections.OpenBody | bytes | None = body
                if sections.OpenBody.live > sections.MAX_OPEN_BODIES:  # many policies alive: no descriptor kept
                    source = body.whole()
                    if source is None:
                        return None
                lazy = sections.Body(source, sections.Recovery(entry, found["source"], found["files"],
                                                                   recompile, discard))
                listed = found["data"].get("tiers")
                tiers = {t["id"] for t in listed if type(t) is dict and type(t.get("id")) is str} if type(
                    listed) is list else set()
                found["data"]["detection"]["signals"] = sections.Chunked(
                    lazy, stored["table"], stored["count"], sections.signals_check(tiers), sections.signals_fresh)
                artifacts["detection"] = StoredPlan(lazy, artifacts["detection"], stored["count"], entry)
            return Entry(found["source"], tuple(tuple(f) for f in found["files"]), found["data"],
                         artifacts, found["checked"])
        finally:
            if fd is not None:
                os.close(fd)
    except Untrusted as exc:
        _warn(str(exc))
        return None
    except (OSError, ValueError, RecursionError):
        return None
    finally:
        os.close(folder)


def _refresh(folder: int, name: str, found: dict, body: bytes) -> None:
    """Rewrite the entry ``name`` with the head ``found`` (new stamps) and the same body, atomically; give up
    quietly on any error. Written by jsonio's own writer: a start that refreshes imports no json."""
    from engine.jsonio import plain_dumps

    text = plain_dumps(found)
    if text is not None and _shape_ok(loads_own(text), len(body)):
        _replace_entry(folder, name, frame(text.encode("utf-8"), body))


def _replace_entry(folder: int, name: str, raw: bytes) -> None:
    """Write ``raw`` as the entry ``name`` of the folder open as ``folder``: a temporary file, then a rename."""
    temp = f".tmp-{os.getpid()}-{os.urandom(6).hex()}"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(raw)
            os.replace(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            try:
                os.unlink(temp, dir_fd=folder)
            except OSError:
                pass
            raise
    except OSError:
        pass


def discard(entry: str) -> None:
    """Remove ``entry`` from the trusted cache folder (its plan failed: the next start rewrites it); give up
    quietly on any OS error."""
    if _distrust:
        return
    directory, name = os.path.split(entry)
    folder = _trusted_folder(directory, create=False)
    if folder is None:
        return
    try:
        os.unlink(name, dir_fd=folder)
    except OSError:
        pass
    finally:
        os.close(folder)


def write(entry: str | None, found: Entry) -> None:
    """Store ``found`` at ``entry`` (data only: the detection plan without compiled conditions; ``checked``,
    what validation said: :func:`checked_record`) and evict old ones; give up quietly on any OS error."""
    if entry is None or _distrust:
        return
    import json

    source, data, artifacts, checked = found.source, found.data, found.artifacts, found.checked
    directory, name = os.path.split(entry)
    files = [list(f) for f in found.files]
    if not _files_ok(files) or files[0][0] != os.path.realpath(files[0][0]):
        return
    links = _links(files)
    if links is None:
        return
    hashed_at = time.time_ns()  # before the stamps: a change after this makes a stamp that is not settled
    stamps = [stamp(path) for path, _ in files]
    if None in stamps or any(_sha256(path) != digest for path, digest in files):
        return  # changed since it was loaded
    kept = {key: artifacts[key] for key in ("detection", "example_origins", "rule_positions", "budgets")
            if key in artifacts}
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
    writer = sections.BodyWriter(dumps)
    stored = None
    try:
        detection = data.get("detection") if isinstance(data, dict) else None
        signals = detection.get("signals") if isinstance(detection, dict) else None
        if signals:
            plan = kept.get("detection")
            if not isinstance(plan, dict):
                return
            plan = {**plan, "conditions": {}}  # conditions are compiled from source
            if not _plan_ok(plan):
                return  # what would not be read back is not written
            # In sections after the head (engine/policy/sections.py): a warm start reads the few a task needs.
            stored = {"count": len(signals), "table": writer.table(sections.chunks(signals))}
            kept["detection"] = sections.plan_sections(plan, len(signals), writer)
            data = {**data, "detection": {k: v for k, v in detection.items() if k != "signals"}}
        payload = {"format": FORMAT, "version": __version__, "source": source, "files": files, "links": links,
                   "stamps": stamps, "hashed_at": hashed_at, "data": data, "artifacts": kept, "checked": checked}
        if stored is not None:
            payload["signals"] = stored
        if not _shape_ok(payload, writer.size):
            return  # what would not be read back is not written
        body = dumps(payload).encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        return
    plan_bytes = writer.bytes()
    if len(body) + len(plan_bytes) > MAX_ENTRY_BYTES - _MAX_FIRST_LINE:
        return
    folder = _trusted_folder(directory, create=True)
    if folder is None:
        return
    try:
        _replace_entry(folder, name, frame(body, plan_bytes))
        evict(folder)
    except OSError:
        pass
    finally:
        os.close(folder)


def _is_entry(name: str) -> bool:
    stem, dot, suffix = name.partition(".")
    return (len(stem) == _KEY_CHARS and all(c in "0123456789abcdef" for c in stem)
            and dot + suffix in (SUFFIX, ".json"))  # .json: entries of earlier formats


def evict(folder: int, keep: int | None = None) -> None:
    """Keep the ``keep`` (default :data:`MAX_ENTRIES`) most recently used entries of the cache folder open as
    ``folder``; remove temporary files older than :data:`STALE_TEMP_SECONDS` (left by a killed process)."""
    now = time.time()
    entries, doomed = [], []
    with os.scandir(folder) as listing:
        for item in listing:
            try:
                st = item.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if _is_entry(item.name):
                entries.append((st.st_mtime, item.name))
            elif item.name.startswith(".tmp-") and now - st.st_mtime > STALE_TEMP_SECONDS:
                doomed.append(item.name)
    entries.sort(reverse=True)
    for name in [name for _, name in entries[MAX_ENTRIES if keep is None else keep:]] + doomed:
        try:
            os.unlink(name, dir_fd=folder)
        except OSError:
            pass
