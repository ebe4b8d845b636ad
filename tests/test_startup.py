"""Start-up is part of the product: a command imports only what it uses (see `python -X importtime`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import sys, io, contextlib
from engine.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
heavy = ("ruamel", "jsonschema", "lark", "rich", "referencing")
print(code, sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy}))
"""


def _imports(args: list[str], cache: Path) -> str:
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(cache), "NO_COLOR": "1"}
    env.pop("CTXBUDGET_POLICY", None)
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("args", [
    ["budget", "dbt-expert", "complex", "--json"],
    ["budget", "dbt-expert", "complex"],
    ["agents", "--json"],
    ["profiles"],
    ["evaluate", "Analyze slow queries", "--agent", "dbt-expert", "--json"],
])
def test_warm_commands_import_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    _imports(args, tmp_path)  # fills the cache
    assert _imports(args, tmp_path) == "0 []"


QUICK_PROBE = """
import sys, io, contextlib
from engine.cli import main
sys.stdin = io.TextIOWrapper(io.BytesIO({stdin!r}))
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(code, sorted(m for m in ("argparse", "gettext", "engine.cli.parser") if m in sys.modules))
"""


@pytest.mark.parametrize("args, stdin", [
    (["budget", "dbt-expert", "complex", "--json"], b""),
    (["budget", "dbt-expert", "--format", "text", "--policy", "default"], b""),
    (["evaluate", "Analyze slow queries", "--agent", "dbt-expert", "--json"], b""),
    (["evaluate", "-", "-a", "dbt-expert", "--explain"], b"Analyze slow queries"),
    (["detect", "Analyze slow queries", "--json"], b""),
    (["hook"], b'{"hook_event_name": "SessionStart", "session_id": "s", "cwd": "/nonexistent"}'),
])
def test_hot_commands_start_without_argparse(args: list[str], stdin: bytes, tmp_path: Path) -> None:
    """budget, evaluate, detect and hook read a simple command line without argparse (engine/cli/quick.py)."""
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(tmp_path), "NO_COLOR": "1",
           "CTXBUDGET_HOOK_LOG": str(tmp_path / "hook.log")}
    env.pop("CTXBUDGET_POLICY", None)
    done = subprocess.run([sys.executable, "-c", QUICK_PROBE.format(stdin=stdin), *args], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []"


def test_a_command_line_argparse_must_read_still_works(run_cli) -> None:
    """What the quick reader declines (an abbreviation here) is argparse's, with the same result."""
    code, out, _ = run_cli("budget", "dbt-expert", "complex", "--js")
    assert code == 0 and out == run_cli("budget", "dbt-expert", "complex", "--json")[1]


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "import sys; from engine.cli import build_parser; "
                           "build_parser().format_help(); print(json.dumps(sorted(sys.modules)))".replace(
                               "print(json", "import json; print(json")], capture_output=True, text=True, timeout=60)
    modules = json.loads(done.stdout)
    assert not [m for m in modules if m.split(".")[0] in ("ruamel", "jsonschema", "lark", "rich")]


VERSION_PROBE = """
import sys, io, contextlib
before = set(sys.modules)
{run}
loaded = sorted(m for m in set(sys.modules) - before)
print(repr(loaded))
"""


@pytest.mark.parametrize("run", [
    # the console script's way: `from engine.cli import main`
    "from engine.cli import main\nwith contextlib.redirect_stdout(io.StringIO()) as out:\n"
    "    code = main(['--version'])\n"
    "assert code == 0 and out.getvalue().startswith('ctxbudget '), out.getvalue()",
    # `python -m engine --version`
    "sys.argv = ['ctxbudget', '--version']\nimport runpy\nwith contextlib.redirect_stdout(io.StringIO()) as out:\n"
    "    try:\n        runpy.run_module('engine', run_name='__main__')\n    except SystemExit as exc:\n"
    "        assert exc.code == 0\nassert out.getvalue().startswith('ctxbudget '), out.getvalue()",
])
def test_version_imports_nothing_of_the_engine(run: str) -> None:
    """`ctxbudget --version` answers before argparse, typing and the command modules are imported."""
    done = subprocess.run([sys.executable, "-c", VERSION_PROBE.format(run=run)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = eval(done.stdout.strip().splitlines()[-1])  # noqa: S307 - our own repr of a list of names
    ours = [m for m in loaded if m == "engine" or m.startswith("engine.")]
    assert set(ours) <= {"engine", "engine.version", "engine.cli", "engine.__main__"}, ours
    assert not {"argparse", "typing", "engine.cli.parser", "__future__"} & set(loaded), loaded


def test_version_output_is_argparse_s(capsys) -> None:
    """The fast path prints what argparse's --version action prints."""
    from engine import __version__
    from engine.cli import build_parser, main

    with pytest.raises(SystemExit):
        build_parser().parse_args(["--version"])
    assert capsys.readouterr().out == f"ctxbudget {__version__}\n"
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"ctxbudget {__version__}\n"


COMPILED_PROBE = """
import sys, engine
policy = engine.load_policy()
{use}
print(policy.compiled_expressions())
"""


@pytest.mark.parametrize("use, expected", [
    ("policy.allocate('dbt-expert', 'complex')", set()),
    ("policy.evaluate('Analyze slow queries', 'dbt-expert')", set()),
    ("from engine.recommend.rules import *\nfor r in policy.recommendations.rules: r.when_program.evaluate", {"rules"}),
])
def test_expressions_compile_only_when_used(use: str, expected: set, tmp_path: Path) -> None:
    """From the cache, budget and evaluate compile no expression (the formula's values are in the entry's budget
    table) and evaluate never compiles the recommendation rules. The first, cold start compiles the formula to
    work out that table."""
    from engine import load_policy

    default = load_policy("default", cache=False)
    formula = default.budget_formula.source
    rules = {r.when for r in default.recommendations.rules}
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(tmp_path)}
    env.pop("CTXBUDGET_POLICY", None)
    for cold in (True, False):  # cold, then from the cache
        done = subprocess.run([sys.executable, "-c", COMPILED_PROBE.format(use=use)], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        compiled = set(eval(done.stdout.strip().splitlines()[-1]))  # noqa: S307 - our own repr
        want = ({formula} if cold else set()) | (rules if "rules" in expected else set())
        assert compiled == want, (cold, compiled, want)


GC_PROBE = """
import sys, io, contextlib, gc
import engine.cli
from engine.cli.render import render as real_render
seen = []
def spy(result, args):
    seen.append(gc.isenabled())
    return real_render(result, args)
import engine.cli.render
engine.cli.render.render = spy
sys.stdin = io.TextIOWrapper(io.BytesIO(b"Analyze slow queries\\n"))
with contextlib.redirect_stdout(io.StringIO()):
    code = engine.cli.main(sys.argv[1:])
print(code, seen, gc.isenabled())
"""


@pytest.mark.parametrize("args, collecting", [
    (["budget", "dbt-expert", "--json"], False),
    (["evaluate", "Analyze slow queries", "--agent", "dbt-expert"], False),
    (["detect", "Analyze slow queries"], False),
    (["pack", "--agent", "dbt-expert", "--task", "Analyze slow queries", "--no-log", "--format", "paths"], False),
    (["agents"], True),
    (["validate", "--json"], True),
])
def test_the_short_commands_run_without_the_cyclic_collector(args: list[str], collecting: bool,
                                                             tmp_path: Path) -> None:
    """GC is off while a short command runs (start-up allocates no cycles worth collecting), on for the others,
    and main() leaves it as it found it (in-process callers such as these tests keep theirs)."""
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(tmp_path), "NO_COLOR": "1"}
    env.pop("CTXBUDGET_POLICY", None)
    done = subprocess.run([sys.executable, "-c", GC_PROBE, *args], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == f"0 [{collecting}] True"


EXIT_PROBE = """
import sys, io, contextlib, gc
from engine.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(list(sys.argv[1:])) if {in_process} else main()
print(code, gc.get_freeze_count() > 0)
"""


@pytest.mark.parametrize("in_process", [False, True])
def test_a_command_process_leaves_its_objects_frozen_and_its_index_closed(in_process: bool, tmp_path: Path) -> None:
    """main() as the console script calls it (no argv: the process ends when it returns) freezes the objects, so
    the interpreter's finalization does not collect them all again (~4 % of a warm pack's instructions), having
    closed the memory index first: no WAL file is left beside it. A caller that passes argv keeps its collector."""
    from engine.resources import sample_memory_dir

    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(tmp_path), "NO_COLOR": "1"}
    env.pop("CTXBUDGET_POLICY", None)
    args = ["pack", "--agent", "dbt-expert", "--task", "Why is the incremental model slow?", "--root",
            sample_memory_dir(), "--no-log", "--format", "paths"]
    for _ in range(2):  # cold, then warm
        done = subprocess.run([sys.executable, "-c", EXIT_PROBE.format(in_process=in_process), *args], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split("\n")[-2] == f"0 {not in_process}"
        assert sorted(p.name for p in (tmp_path / "memory").iterdir())[0].endswith(".sqlite")
        assert not [p.name for p in (tmp_path / "memory").iterdir() if not p.name.endswith(".sqlite")]


@pytest.mark.parametrize("args", [["validate"], ["analyze", "--log", "{log}", "--json"]])
def test_other_commands_leave_the_finalization_to_collect_their_objects(args: list[str], tmp_path: Path) -> None:
    """Only the short commands (budget, evaluate, hook, pack) freeze their objects at exit: the others hold what a
    finalizer may still have to release (DuckDB's database, files), and they are not started on every prompt."""
    log = tmp_path / "usage.jsonl"
    log.write_text('{"agent": "a", "profile": "p", "budget_allocated": 100, "tokens_used": 50}\n', encoding="utf-8")
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(tmp_path), "NO_COLOR": "1"}
    env.pop("CTXBUDGET_POLICY", None)
    done = subprocess.run([sys.executable, "-c", EXIT_PROBE.format(in_process=False),
                           *[a.format(log=log) for a in args]], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "0 False"


def test_version_imports_only_engine_and_engine_cli() -> None:
    """What the console script's `ctxbudget --version` loads beyond Python's start: engine/__init__ and
    engine/cli/__init__ (which imports only the built-in gc and sys) — no __future__, typing or command module."""
    probe = ("import sys, io, contextlib\nbefore = set(sys.modules)\nfrom engine.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n    main(['--version'])\n"
             "print(sorted(set(sys.modules) - before))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert set(eval(done.stdout.strip().splitlines()[-1])) <= {"engine", "engine.version", "engine.cli", "gc"}  # noqa: S307


FRESH_PROBE = """
import sys, io, contextlib
from engine.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
sys.stdout.write(repr((code, out.getvalue(), "json" in sys.modules)))
"""


@pytest.mark.parametrize("args", [
    ["budget", "dbt-expert", "complex", "--json"],
    ["budget", "analytics-engineer", "--json"],
    ["budget", "dbt-expert", "complex"],
    ["validate", "--json"],
    ["validate"],
    ["budget", "no-such-agent", "--json"],  # an error, as JSON
])
def test_warm_commands_answer_the_same_without_json_imported(args: list[str], tmp_path: Path, run_cli,
                                                             monkeypatch) -> None:
    """A warm budget or validate reads its cache entry and writes its answer without importing json (or re):
    the output is the same, byte for byte, as a process where json is imported gets (this one)."""
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(tmp_path), "NO_COLOR": "1"}
    env.pop("CTXBUDGET_POLICY", None)
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(tmp_path))
    for _ in range(2):  # cold (writes the entry), then warm
        done = subprocess.run([sys.executable, "-c", FRESH_PROBE, *args], env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
    code, out, json_imported = eval(done.stdout)  # noqa: S307 - our own repr
    assert not json_imported
    assert (code, out) == run_cli(*args)[:2]


LEAN_PROBE = """
import sys, io, contextlib
from engine.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
print(code, sorted(m for m in ("typing", "json", "re", "enum", "argparse", "engine.expr", "engine.detect") if m in sys.modules))
"""


@pytest.mark.parametrize("fmt", ["paths", "md", "json"])
def test_a_warm_pack_imports_no_argparse_or_re(fmt: str, tmp_path: Path) -> None:
    """A warm `ctxbudget pack` of an ASCII task under the default policy's "folder/**" sources reads its command line
    without argparse (engine.cli.quick), and cuts the task's words and fills the sources' templates without re
    (with its enum: ~4 ms of a start); its index reads no file, so no Markdown pattern is compiled either. Run with
    -S and the checkout on the path, as above (RE2's folder too: detection needs it)."""
    import re2

    from engine.resources import sample_memory_dir

    args = ["pack", "--agent", "dbt-expert", "--task", "Why does the incremental merge fail after a backfill?",
            "--root", sample_memory_dir(), "--no-log", "--format", fmt]
    _imports(args, tmp_path)  # fills the policy cache and the memory index
    checkout, packages = Path(__file__).resolve().parents[1], Path(re2.__file__).resolve().parents[1]
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(tmp_path), "NO_COLOR": "1",
           "PYTHONPATH": os.pathsep.join([str(checkout), str(packages)])}
    env.pop("CTXBUDGET_POLICY", None)
    probe = LEAN_PROBE.replace('"typing", "json", "re", "enum", "argparse", "engine.expr", "engine.detect"',
                               '"re", "enum", "argparse", "gettext"')
    assert probe != LEAN_PROBE
    done = subprocess.run([sys.executable, "-S", "-c", probe, *args], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []"


@pytest.mark.parametrize("args", [
    ["budget", "dbt-expert", "complex", "--json"],
    ["budget", "dbt-expert"],
    ["validate"],
    ["validate", "--json"],
])
def test_a_warm_budget_or_validate_imports_no_typing_json_or_re(args: list[str], tmp_path: Path) -> None:
    """Each of typing, json and re (with enum) costs a start several milliseconds (docs/architecture.md, Start-up).
    Run with -S and the checkout on the path: an editable install's import finder imports re itself."""
    _imports(args, tmp_path)  # fills the cache
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(tmp_path), "NO_COLOR": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("CTXBUDGET_POLICY", None)
    done = subprocess.run([sys.executable, "-S", "-c", LEAN_PROBE, *args], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []"


EVALUATE_PROBE = """
import sys, io, contextlib
from engine.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
print(code, sorted(m for m in ("typing", "json", "re", "enum", "argparse", "engine.expr", "engine.detect.conditions",
                               "re2", "engine.detect.detector") if m in sys.modules))
"""


@pytest.mark.parametrize("args, expected", [
    # not a question: `count.lookup == 0 && ask.question && ask.words <= 12` is decided by its guard
    # `ask.question`, read from the bindings (engine.detect.parts.direct_conjunct), with nothing compiled
    (["evaluate", "Analyze slow queries", "--agent", "dbt-expert", "--json"], "0 ['engine.detect.detector', 're2']"),
    (["detect", "Analyze slow queries", "--json"], "0 ['engine.detect.detector', 're2']"),
    # a marker ("can you"): the ask's Python regexes are compiled (re), still no expression
    (["evaluate", "Some context. Can you check the freshness of orders?", "--agent", "dbt-expert", "--json"],
     "0 ['engine.detect.detector', 'enum', 're', 're2']"),
])
def test_a_warm_evaluate_imports_no_typing_json_re_or_expressions(args: list[str], expected: str,
                                                                   tmp_path: Path) -> None:
    """A warm evaluate of a task its guards decide imports neither typing, json, re (with enum) nor the
    expression language (docs/architecture.md, Start-up); RE2 it needs for the patterns of the set matcher.
    Run with -S and the checkout on the path, as above."""
    import re2

    _imports(args, tmp_path)  # fills the cache
    checkout, packages = Path(__file__).resolve().parents[1], Path(re2.__file__).resolve().parents[1]
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(tmp_path), "NO_COLOR": "1",
           "PYTHONPATH": os.pathsep.join([str(checkout), str(packages)])}  # RE2's directory, without its .pth files
    env.pop("CTXBUDGET_POLICY", None)
    done = subprocess.run([sys.executable, "-S", "-c", EVALUATE_PROBE, *args], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == expected


HOOK_PROBE = """
import sys, io
if {compile_all}:  # the way before: typing imported, every expression compiled
    import typing
    import engine.expr.direct
    engine.expr.direct.read = lambda source, names=None: None
from engine.cli import main
sys.stdin = io.TextIOWrapper(io.BytesIO({stdin!r}))
out, sys.stdout = sys.stdout, io.StringIO()  # (not contextlib.redirect_stdout: it is among the modules watched)
try:
    code = main(["hook"])
finally:
    out, sys.stdout = sys.stdout, out
watched = ("typing", "engine.expr.compiler", "engine.expr.syntax", "engine.expr._tables", "re2", "argparse",
           "sqlite3", "datetime", "contextlib", "logging", "signal", "json", "re", "enum")
print(repr((code, out.getvalue(), sorted(m for m in watched if m in sys.modules))))
"""

WORDS_ONLY_POLICY = """\
extends: default
detection:
  signals:
    - {id: snowflake, group: system, words: [snowflake]}
    - {id: dbt, group: system, words: [dbt]}
    - {id: diagnosis, words: [troubleshoot, root cause, why, fail], weights: {complex: 3}}
"""


def _hook_process(event: str, root: Path, session: str, compile_all: bool = False) -> tuple:
    """One `ctxbudget hook` process for ``event`` (tests/data/claude-code/events) in the project ``root``:
    (exit code, stdout with the root written as ROOT, the watched modules it imported). Run with -S and the
    checkout on the path (an editable install's finder imports modules of its own)."""
    import re2

    from conftest import DATA

    text = (DATA / "claude-code" / "events" / event).read_text(encoding="utf-8")
    text = text.replace("__CWD__", str(root)).replace("3f2c9a1e-5b7d-4e8a-9c6f-1a2b3c4d5e6f", session)
    checkout, packages = Path(__file__).resolve().parents[1], Path(re2.__file__).resolve().parents[1]
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(root / "cache"), "NO_COLOR": "1",
           "CTXBUDGET_HOOK_LOG": str(root / "hook.log"), "CTXBUDGET_LOG": str(root / "usage.jsonl"),
           "PYTHONPATH": os.pathsep.join([str(checkout), str(packages)])}
    env.pop("CTXBUDGET_POLICY", None)
    probe = HOOK_PROBE.format(stdin=text.encode(), compile_all=compile_all)
    done = subprocess.run([sys.executable, "-S", "-c", probe], env=env, capture_output=True, text=True, timeout=60,
                          cwd=root)
    assert done.returncode == 0, done.stderr
    code, out, modules = eval(done.stdout.strip().splitlines()[-1])  # noqa: S307 - our own repr
    assert not (root / "hook.log").exists() or not (root / "hook.log").read_text(), (root / "hook.log").read_text()
    return code, out.replace(str(root), "ROOT"), modules


def _project(tmp_path: Path, name: str, policy: str | None = None) -> Path:
    import shutil

    from engine.resources import sample_memory_dir

    root = tmp_path / name
    shutil.copytree(sample_memory_dir(), root / ".claude" / "memory")
    if policy is not None:
        (root / "ctxbudget.yaml").write_text(policy, encoding="utf-8")
    return root


def test_the_stop_hook_records_the_turn_without_typing_or_logging(tmp_path: Path) -> None:
    """The Stop hook (a new process at the end of every turn) writes the turn's usage record through the monitor,
    which imports neither typing nor logging: nothing in the process could take a log record (the monitor's
    logger has only a NullHandler); without the two the hook went 66.9 -> 50.5 ms (interleaved A/B)."""
    root = _project(tmp_path, "project")
    _hook_process("user-prompt-submit.json", root, "warm-up")  # fills the policy cache
    _hook_process("user-prompt-submit.json", root, "turn")
    code, _, modules = _hook_process("stop.json", root, "turn")
    assert code == 0 and "typing" not in modules and "logging" not in modules, modules
    assert "json" not in modules, modules  # the record is written without it (engine.jsonio.plain_dumps)
    records = [json.loads(line) for line in (root / "usage.jsonl").read_text(encoding="utf-8").splitlines()]
    turn = [r for r in records if r.get("session_id") == "turn"]
    assert len(turn) == 1 and turn[0]["run_id"].startswith("turn:prompt:"), turn


@pytest.mark.parametrize("event, policy, expected", [
    # the default policy: its screening set of ungated patterns needs RE2 for any task it detects
    ("user-prompt-submit.json", None, ["re2"]),
    # a policy of words alone: the word index screens the task, nothing is compiled
    ("user-prompt-submit.json", WORDS_ONLY_POLICY, []),
    # no task: nothing is detected
    ("session-start.json", None, []),
])
def test_a_warm_hook_imports_no_typing_and_compiles_no_expression(event: str, policy: str | None, expected: list,
                                                                   tmp_path: Path) -> None:
    """A hook process (a new one on every prompt) with the bundled example memory, its policy cached: the memory
    relevance is read without the expression compiler (engine.expr.direct), typing is never imported, RE2 only
    when a pattern must be compiled, SQLite without sqlite3's datetime adapters, its timer without the `signal`
    wrapper's enums (the C module `_signal`; ~0.8 ms) — and it injects what a process
    that compiles every expression injects."""
    now, before = _project(tmp_path, "now", policy), _project(tmp_path, "before", policy)
    _hook_process(event, now, "warm-up")  # fills the policy cache (a cold start compiles the budget formula)
    _hook_process(event, before, "warm-up", compile_all=True)
    code, out, modules = _hook_process(event, now, "session-1")
    assert (code, modules) == (0, expected)
    assert "additionalContext" in out
    old_code, old_out, old_modules = _hook_process(event, before, "session-1", compile_all=True)
    assert {"typing", "engine.expr.compiler"} <= set(old_modules)  # the comparison is with the compiled way
    assert (code, out) == (old_code, old_out)
