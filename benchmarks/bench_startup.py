"""Start-up of whole ``ctxbudget`` processes, as ratios against bare ``python -c pass`` measured in the same run.

Every Claude Code hook is a new process, so start-up is paid on every prompt. Two ways to measure it:

    # the targets of issue 10: interleaved rounds, medians and ratios (printed with -s)
    CTXBUDGET_BENCH_PYTHON=/work/venvs/startup-bench/bin/python \\
        pytest benchmarks/bench_startup.py -k ratios -s --benchmark-enable
    # one pytest-benchmark row per command
    pytest benchmarks/bench_startup.py -k cold_start --benchmark-enable --benchmark-columns=median,iqr,rounds

**Measure a non-editable install.** An editable install (``pip install -e``) puts a setuptools import finder in
front of every import of every start (about 20 ms on a loaded machine), which no user pays. So point
``$CTXBUDGET_BENCH_PYTHON`` at the interpreter of a throwaway venv with a plain install of this checkout::

    python3 -m venv /work/venvs/startup-bench && /work/venvs/startup-bench/bin/pip install -q .

The commands run from the checkout's root, where ``python -m engine`` imports the checkout's own code first,
so the venv supplies the dependencies and no re-install is needed after a change. Without
``$CTXBUDGET_BENCH_PYTHON`` the running interpreter is used, and the ratios test says so when that
interpreter finds ``engine`` through an editable finder.

``test_startup_ratios`` runs every command once per round, in a shuffled order (so a load spike on a shared
machine hits every command alike), and reports each median as a multiple of the ``python -c pass`` median of
the same rounds: ``--version``, ``budget --json``, ``evaluate --json``, ``detect --json``, a warm
``validate``, ``evaluate --json`` with a generated 3,000-signal policy against the same command with the
default policy written out the same way, and ``hook`` with Claude Code's UserPromptSubmit event for a project
holding the bundled example memory (a new session each run, so each injects: tier detected, memory packed),
and ``hook`` with the Stop event that ends such a turn (its usage record written). Each runs as ``ctxbudget`` runs (the console script's text, see
``CONSOLE_SCRIPT``: the one the installer wrote beside ``$CTXBUDGET_BENCH_PYTHON``, whose ``import re`` pip < 25
writes and pip ≥ 25 does not; with a newer pip, ``--version`` is also run through the older script); the first
four also as ``python -m engine``, which pays for runpy on top. The medians
of the CPU time the processes used (user + system) are printed beside the wall-clock ones: on a shared
machine they move less with the load. The targets (issue 10) are printed beside the figures; they are
asserted only with ``CTXBUDGET_BENCH_ASSERT=1`` (a loaded machine widens every ratio).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

PYTHON = os.environ.get("CTXBUDGET_BENCH_PYTHON") or sys.executable
ROUNDS = int(os.environ.get("CTXBUDGET_BENCH_ROUNDS", "20"))
ENV = {**os.environ, "NO_COLOR": "1"}
ENV.pop("CTXBUDGET_POLICY", None)
# As installed: bytecode is written and reused (some sandboxes set PYTHONDONTWRITEBYTECODE, which makes every
# start recompile every module from source).
ENV.pop("PYTHONDONTWRITEBYTECODE", None)
CLI = [PYTHON, "-m", "engine"]
# What `ctxbudget` runs: the console script the installer wrote (its text, run with -c from the checkout's root so
# that the checkout's code is measured). pip before 25.0 writes the first wrapper below, whose `import re` alone
# costs ~1.55x of `python -c pass` here (with enum, functools and collections); pip >= 25.0 (pypa/pip#13165) and uv
# write one without it. `python -m engine` pays for runpy (importlib.util, contextlib: ~5 ms here) on top.
OLD_PIP_SCRIPT = """import re
import sys
from engine.cli import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""
PIP_SCRIPT = """import sys
from engine.cli import main
if __name__ == '__main__':
    sys.argv[0] = sys.argv[0].removesuffix('.exe')
    sys.exit(main())
"""


def _console_script() -> str:
    """The text of the ``ctxbudget`` script beside ``PYTHON`` (without its shebang and comments), or pip 25's."""
    installed = Path(PYTHON).parent / "ctxbudget"
    if not installed.is_file():
        return PIP_SCRIPT
    body = [line for line in installed.read_text().splitlines() if not line.startswith("#")]
    return "\n".join(body) + "\n"


CONSOLE_SCRIPT = _console_script()
SCRIPT = [PYTHON, "-c", CONSOLE_SCRIPT]
TASK = "Analyze slow queries"


ROOT = Path(__file__).resolve().parent.parent


def _run(command: list[str], env: dict | None = None, stdin: Callable[[], bytes] | None = None) -> None:
    # From the checkout's root: `-m engine` and `-c` put it first on sys.path, so the checkout's code is measured
    # (with the venv's dependencies) whatever version of it the venv has installed. ``stdin``: a callable giving
    # the bytes of the command's standard input (made before the clock starts).
    data = None if stdin is None else stdin()
    subprocess.run(command, env=env or ENV, cwd=ROOT, input=data, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)


class HookEvents:
    """Claude Code's UserPromptSubmit event (tests/data/claude-code/events) for a project that holds the bundled
    example memory in ``root``/.claude/memory, each call with a new session id: every run injects (a session's
    second run of the same prompt would skip what its first injected)."""

    SESSION = "3f2c9a1e-5b7d-4e8a-9c6f-1a2b3c4d5e6f"  # the fixtures' session id

    def __init__(self, root: Path):
        import itertools
        import shutil

        shutil.copytree(ROOT / "examples" / "memory", root / ".claude" / "memory")
        self.root = root
        self.event = self._fixture("user-prompt-submit.json")
        self.count = itertools.count()
        self.session = ""

    def _fixture(self, name: str) -> str:
        return (ROOT / "tests" / "data" / "claude-code" / "events" / name).read_text("utf-8").replace(
            "__CWD__", str(self.root))

    def __call__(self) -> bytes:
        self.session = f"bench-{next(self.count)}"
        return self.event.replace(self.SESSION, self.session).encode()

    def stop_after_prompt(self, command: list[str], env: dict) -> Callable[[], bytes]:
        """Standard input for a Stop hook: each call first runs, untimed, the UserPromptSubmit hook of a new
        session, whose turn the Stop then ends (writing its usage record through the monitor)."""
        stop = self._fixture("stop.json")

        def make() -> bytes:
            subprocess.run(command, env=env, cwd=ROOT, input=self(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            return stop.replace(self.SESSION, self.session).encode()

        return make

    def check(self, command: list[str], env: dict) -> None:
        """The hook injects memory (a hook fails open: exit 0 alone says nothing)."""
        done = subprocess.run(command, env=env, cwd=ROOT, input=self(), capture_output=True, check=True)
        assert b"additionalContext" in done.stdout, done.stderr[-500:]


@pytest.mark.parametrize("name,command", [
    ("python -c pass (baseline)", [PYTHON, "-c", "pass"]),
    ("import yaml+schema+lark+rich", [PYTHON, "-c", "import ruamel.yaml, jsonschema, lark, rich.console"]),
    ("ctxbudget --help", CLI + ["--help"]),
    ("ctxbudget budget --json (warm cache)", CLI + ["budget", "dbt-expert", "complex", "--json"]),
    ("ctxbudget evaluate --json (warm cache)", CLI + ["evaluate", TASK, "--agent", "dbt-expert", "--json"]),
    ("ctxbudget budget (no cache)", CLI + ["budget", "dbt-expert", "complex", "--json"]),
])
def test_cold_start(benchmark, name: str, command: list[str], tmp_path) -> None:
    env = dict(ENV)
    if "no cache" in name:
        env["CTXBUDGET_NO_CACHE"] = "1"
    else:
        env.pop("CTXBUDGET_NO_CACHE", None)
        env["CTXBUDGET_CACHE_DIR"] = str(tmp_path)
    _run(command, env)  # correctness (exit 0) and a warm cache before timing
    benchmark.pedantic(_run, args=(command, env), rounds=30, iterations=1)


# -- the targets, interleaved --------------------------------------------------------------------------------

TIERS = ["simple", "medium", "complex", "multi-system"]
SYLLABLES = ["ka", "lo", "mir", "ten", "vas", "quo", "zel", "dri", "pan", "sor", "bel", "fyn", "gra", "hu", "jex"]


def default_data() -> dict:
    """The bundled default policy's merged data, as plain JSON data."""
    out = subprocess.run([PYTHON, "-c", "import json, engine; "
                          "from engine.policy import load_data; print(json.dumps(load_data('default')))"],
                         env=ENV, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def many_signals(data: dict, count: int) -> dict:
    """``data`` with generated word, phrase and pattern signals added until it has ``count`` signals."""
    rng = random.Random(3)
    data = json.loads(json.dumps(data))
    signals = data["detection"]["signals"]
    derived = [s for s in signals if "when" in s]
    signals[:] = [s for s in signals if "when" not in s]
    i = 0
    while len(signals) + len(derived) < count:
        a, b, c = ("".join(rng.choice(SYLLABLES) for _ in range(4)) + str(i) for _ in range(3))
        tier = TIERS[i % 4]
        if i % 10 == 9:
            item = {"id": f"gen-p{i}", "pattern": rf"\b{a}(?:ing|ed)?\s+{b}\b", "weights": {tier: 1}}
        elif i % 10 == 8:
            item = {"id": f"gen-q{i}", "words": [f"{a} {b}", c], "weights": {tier: 1.5}}
        else:
            item = {"id": f"gen-w{i}", "words": [a, b, c], "weights": {tier: 1}}
        signals.append(item)
        i += 1
    signals.extend(derived)  # derived signals see the hits before them: keep them last, as in the default
    return data


def _medians(commands: dict[str, tuple], rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """The median wall-clock and CPU milliseconds of each command over interleaved, shuffled rounds."""
    import resource

    samples: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    order = list(commands)
    rng = random.Random(1)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            command, env, *stdin = commands[name]
            data = stdin[0]() if stdin else None
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            _run(command, env, (lambda: data) if stdin else None)
            samples[name].append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return ({name: statistics.median(times) * 1000 for name, times in samples.items()},
            {name: statistics.median(times) * 1000 for name, times in cpu.items()})


def _editable() -> bool:
    out = subprocess.run([PYTHON, "-c", "import sys; print(any('editable' in repr(f).lower() for f in sys.meta_path))"],
                         env=ENV, cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() == "True"


def test_startup_ratios(tmp_path: Path) -> None:
    """Each command's median start-up as a multiple of ``python -c pass`` in the same interleaved rounds."""
    base = default_data()
    default_file = tmp_path / "default-copy.json"
    default_file.write_text(json.dumps(base), encoding="utf-8")
    big_file = tmp_path / "signals-3000.json"
    big_file.write_text(json.dumps(many_signals(base, 3000)), encoding="utf-8")
    env = {**ENV, "CTXBUDGET_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("CTXBUDGET_NO_CACHE", None)
    evaluate = ["evaluate", TASK, "--agent", "dbt-expert", "--json"]
    events = HookEvents(tmp_path / "project")
    hook_env = {**env, "CTXBUDGET_HOOK_LOG": str(tmp_path / "hook.log"), "CTXBUDGET_LOG": str(tmp_path / "usage.jsonl")}
    commands = {
        "python -c pass": ([PYTHON, "-c", "pass"], env),
        "--version": (SCRIPT + ["--version"], env),
        "budget --json": (SCRIPT + ["budget", "dbt-expert", "complex", "--json"], env),
        "evaluate --json": (SCRIPT + evaluate, env),
        "detect --json": (SCRIPT + ["detect", TASK, "--json"], env),
        "validate (warm)": (SCRIPT + ["validate"], env),
        "evaluate, default as a file": (SCRIPT + evaluate + ["--policy", str(default_file)], env),
        "evaluate, 3,000 signals": (SCRIPT + evaluate + ["--policy", str(big_file)], env),
        "-m engine --version": (CLI + ["--version"], env),
        "-m engine budget --json": (CLI + ["budget", "dbt-expert", "complex", "--json"], env),
        "-m engine evaluate --json": (CLI + evaluate, env),
        "-m engine validate (warm)": (CLI + ["validate"], env),
        # what Claude Code runs on every prompt: detect the prompt's tier, pack the bundled example memory
        "hook (UserPromptSubmit)": (SCRIPT + ["hook"], hook_env, events),
        # the end of that turn: one usage record written
        "hook (Stop)": (SCRIPT + ["hook"], hook_env, events.stop_after_prompt(SCRIPT + ["hook"], hook_env)),
    }
    if CONSOLE_SCRIPT != OLD_PIP_SCRIPT:  # what an older pip's script pays: its `import re`
        commands["--version, pip<25 script"] = ([PYTHON, "-c", OLD_PIP_SCRIPT, "--version"], env)
    for command, run_env, *stdin in commands.values():
        _run(command, run_env, *stdin)  # exit 0, and a warm cache
    events.check(SCRIPT + ["hook"], hook_env)
    records = (tmp_path / "usage.jsonl").read_text("utf-8").count("\n")
    _run(*commands["hook (Stop)"])
    assert (tmp_path / "usage.jsonl").read_text("utf-8").count("\n") == records + 1  # the Stop wrote its record
    medians, cpu = _medians(commands, ROUNDS)
    floor = medians["python -c pass"]
    targets = {"--version": 1.5, "budget --json": 2.5, "evaluate --json": 3.0, "validate (warm)": 3.0}
    if _editable():
        print(f"\nNOTE: {PYTHON} imports engine through an editable install; set CTXBUDGET_BENCH_PYTHON to a "
              "non-editable venv's python (see the module's docstring)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{ROUNDS} interleaved rounds, load average {load:.1f}, python {PYTHON}")
    ratios = {}
    print(f"  {'':<30} {'wall':>10}  {'ratio':>6}  {'cpu':>8}  {'ratio':>6}")
    for name, ms in medians.items():
        ratios[name] = ms / floor
        target = f"(target ≤ {targets[name]}×)" if name in targets else ""
        print(f"  {name:<30} {ms:7.1f} ms  {ratios[name]:5.2f}×  {cpu[name]:5.1f} ms  "
              f"{cpu[name] / cpu['python -c pass']:5.2f}×  {target}")
    big = medians["evaluate, 3,000 signals"] / medians["evaluate, default as a file"]
    print(f"  3,000 signals / default: {big:.2f}×  (target ≤ 1.2×)")
    if os.environ.get("CTXBUDGET_BENCH_ASSERT") == "1":
        for name, limit in targets.items():
            assert ratios[name] <= limit, (name, ratios[name])
        assert big <= 1.2, big
