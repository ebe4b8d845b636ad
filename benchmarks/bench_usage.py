"""analyze + recommend over a 1,000,000-record usage log: DuckDB (the engine; its JSON reader, and its
line-by-line reader as a reference) and plain json-per-line loops, in the same run.

    python benchmarks/bench_usage.py                  # the full report: times, and peak memory 100k vs 1M
    python benchmarks/bench_usage.py --records 200000
    python benchmarks/bench_usage.py --records 1000000 --copies 10 --no-lines --repeat 1   # 10,000,000 records
    python benchmarks/bench_usage.py --log LOG --baseline-tree DIR --repeat 7   # this tree against another
    pytest benchmarks/bench_usage.py --benchmark-enable --benchmark-columns=median,min,max,rounds

The log is generated in a temporary folder (about 380 MB for a million records) with known answers, and
every timed result is checked against them first. Baselines:

- ``json loop (parse only)``: ``for line in f: json.loads(line)`` — the floor of any per-line approach.
- ``json loop + lists (seed-style)``: parse each line, keep every usage in per-agent lists, then mean,
  median, p90 and exceedance with ``statistics`` — what a script does; its memory grows with the log.

- ``floor: DuckDB …``: DuckDB's JSON reader summing runs, usage, exceedance and scope tokens per agent, and
  nothing else: no checks, no usage bins (median, p90), no scope shares, no tiers, no line count. With the keys
  read as JSON (``kinds``) it is the floor of a reader that sees each value's JSON kind, which exact answers
  need; read typed, ``"12"`` is read as 12 and ``1.6`` as 2, and it is no faster (its scopes are a MAP)
  (``tests/test_analytics_engine.py::test_only_json_columns_keep_a_values_kind``).
- ``DuckDB, line by line``: the engine reading each line as text (what it does for remote logs and logs its
  JSON reader cannot vouch for; ``duck.FAST = False``).

Peak memory is measured in fresh processes (the resident high-water mark) for 100,000 and 1,000,000 records:
DuckDB's stays within its memory_limit, the seed-style lists grow with the log.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import engine
from engine.analytics import analyze
from engine.recommend import recommend

ROOT = Path(__file__).resolve().parents[1]


def generate(path: Path, records: int, seed: int = 1) -> dict[str, tuple[int, int]]:
    """Write ``records`` native records; return {agent: (runs, exceeded)} to check results against."""
    policy = engine.load_policy("default")
    rng = random.Random(seed)
    agents = list(policy.agents)
    tiers = [t.id for t in policy.tiers]
    plans = {}
    for agent in agents:
        for tier in tiers:
            allocation = policy.allocate(agent, tier)
            weights = policy.profiles[allocation.profile].weights
            plans[agent, tier] = (allocation.profile, allocation.budget, tuple(weights.items()))
    # each agent has its own usage level, so recommendations differ: some exceed often, some load little
    level = {agent: 0.25 + 0.9 * i / len(agents) for i, agent in enumerate(agents)}
    known: dict[str, list[int]] = {agent: [0, 0] for agent in agents}
    start = 1_759_276_800  # 2025-10-01T00:00:00Z
    template = ('{"timestamp":"%s","agent":"%s","profile":"%s","tier":"%s","budget":%d,"tokens_loaded":%d,'
                '"usage":%.6f,"exceeded":%s,"scopes":{%s},"alerts":[],"refused_tokens":0,"duration_s":1.25,'
                '"success":true,"error":null,"policy_hash":"sha256:0123456789abcdef"}\n')
    with open(path, "w", encoding="utf-8") as out:
        batch = []
        for i in range(records):
            agent = agents[i % len(agents)]
            tier = tiers[(i // len(agents)) % len(tiers)]
            profile, budget, weights = plans[agent, tier]
            loaded = int(budget * max(0.0, rng.gauss(level[agent], 0.15)))
            scopes = ",".join(f'"{scope}":{int(loaded * w)}' for scope, w in weights)
            exceeded = loaded > budget
            known[agent][0] += 1
            known[agent][1] += exceeded
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 2 * i))
            batch.append(template % (stamp, agent, profile, tier, budget, loaded, loaded / budget,
                                     "true" if exceeded else "false", scopes))
            if len(batch) == 20000:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch))
    return {agent: (runs, exceeded) for agent, (runs, exceeded) in known.items()}


def replicate(path: Path, copies: int) -> None:
    """Make ``path`` its own content ``copies`` times over (each copy has the same known answers)."""
    import shutil

    once = path.with_suffix(".once")
    path.rename(once)
    with open(path, "wb") as out:
        for _ in range(copies):
            with open(once, "rb") as source:
                shutil.copyfileobj(source, out, 1 << 24)
    once.unlink()


def check(analysis, known: dict[str, tuple[int, int]]) -> None:
    got = {name: (item.stats.runs, item.stats.exceeded) for name, item in analysis.agents.items()}
    assert got == known, "analyze disagrees with the generated log"
    assert analysis.skipped_lines == 0


# -- the baselines -----------------------------------------------------------------------------------------

def json_loop(path: Path) -> int:
    n = 0
    with open(path, "rb") as handle:
        for line in handle:
            json.loads(line)
            n += 1
    return n


def json_loop_with_lists(path: Path) -> dict[str, dict]:
    usage: dict[str, list[float]] = defaultdict(list)
    exceeded: dict[str, int] = defaultdict(int)
    with open(path, "rb") as handle:
        for line in handle:
            record = json.loads(line)
            usage[record["agent"]].append(record["usage"])
            exceeded[record["agent"]] += record["exceeded"]
    result = {}
    for agent, values in usage.items():
        values.sort()
        result[agent] = {"runs": len(values), "mean": statistics.fmean(values), "median": statistics.median(values),
                         "p90": values[min(len(values) - 1, int(0.9 * len(values)))], "exceeded": exceeded[agent]}
    return result


USUAL = ("timestamp", "agent", "profile", "tier", "budget", "tokens_loaded", "usage", "exceeded", "success", "scopes")
"""The keys of a usage record written the usual way (what the floors read)."""


def duckdb_floor(path: Path, kinds: bool = True) -> dict[str, tuple[int, int]]:
    """{agent: (runs, exceeded)} and the usage and scope tokens per agent, straight from DuckDB's JSON reader
    (the engine's settings): the least any DuckDB reader of the log does. ``kinds``: the keys read as JSON
    (each value's kind kept, as the engine reads them), else typed."""
    from engine.analytics import duck

    if kinds:
        columns = ", ".join(f"'{key}': 'JSON'" for key in USUAL)
        values = ("agent ->> '$'", "try_cast(usage AS DOUBLE)", "exceeded::VARCHAR = 'true'",
                  "list_sum(json_extract(scopes, '$.*')::BIGINT[])")
    else:
        types = {"budget": "BIGINT", "tokens_loaded": "BIGINT", "usage": "DOUBLE", "exceeded": "BOOLEAN",
                 "success": "BOOLEAN", "scopes": "MAP(VARCHAR, BIGINT)"}
        columns = ", ".join(f"'{key}': '{types.get(key, 'VARCHAR')}'" for key in USUAL)
        values = ("agent", "usage", "exceeded", "list_sum(map_values(scopes))")
    agent, usage, exceeded, tokens = values
    con = duck.connect()
    try:
        rows = con.execute(f"""
            SELECT {agent}, count(*), count(*) FILTER (WHERE {exceeded}), sum({usage}), sum({tokens})
            FROM read_json(?, format = 'newline_delimited', columns = {{{columns}}}, ignore_errors = true)
            GROUP BY ALL""", [str(path)]).fetchall()
    finally:
        con.close()
    return {name: (runs, over) for name, runs, over, _usage, _tokens in rows}


def analyze_and_recommend(policy, path: Path, fast: bool = True):
    from engine.analytics import duck

    duck.FAST = fast
    try:
        analysis = analyze(policy, path)
    finally:
        duck.FAST = True
    return analysis, recommend(policy, analysis)


def whole_process(path: Path, tree: Path = ROOT, command: str = "recommend") -> bytes:
    """``ctxbudget COMMAND --log PATH --json`` in a fresh process (start-up, analyze, recommend), run from the
    checkout ``tree`` (another one: its ``engine`` first on the path); its output."""
    env = dict(os.environ, PYTHONPATH=str(tree)) if tree != ROOT else None
    return subprocess.run([sys.executable, "-m", "engine", command, "--log", str(path), "--json"], check=True,
                          capture_output=True, cwd=tree, env=env).stdout


# -- peak memory in a fresh process --------------------------------------------------------------------------

PEAK = """
import resource, sys
sys.path.insert(0, sys.argv[3])
import engine
from bench_usage import analyze_and_recommend, json_loop_with_lists
path, how = sys.argv[1], sys.argv[2]
if how == "json":
    json_loop_with_lists(path)
else:
    analyze_and_recommend(engine.load_policy("default"), path, fast=how == "duckdb")
try:  # this process's own high-water mark; ru_maxrss would include the parent's from before exec
    with open("/proc/self/status") as status:
        own = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(own, workers)
"""


def peak_kib(path: Path, how: str) -> tuple[int, int]:
    """Peak RSS (KiB) of a fresh process running analyze + recommend (``how``: "duckdb", "lines" for the
    line-by-line reader, "json" for the seed-style baseline), and of its largest child."""
    done = subprocess.run([sys.executable, "-c", PEAK, str(path), how, str(Path(__file__).parent)],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    own, workers = done.stdout.split()
    return int(own), int(workers)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the whole-process run is a child)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(repeat: int, function, *args, **kwargs):
    """(best seconds, median seconds, result) over ``repeat`` runs: a shared machine is noisy."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = function(*args, **kwargs)
        times.append(time.perf_counter() - began)
    return min(times), statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--copies", type=int, default=1,
                        help="the log is the generated records this many times over (a 10M log in seconds)")
    parser.add_argument("--small", type=int, default=100_000, help="the smaller log of the memory comparison")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timing (best and median shown)")
    parser.add_argument("--no-lines", action="store_true", help="skip the line-by-line reader (slow)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory comparison")
    parser.add_argument("--log", type=Path, help="time this log instead of a generated one (its known answers are "
                        "not checked: only that this tree and --baseline-tree answer alike)")
    parser.add_argument("--baseline-tree", type=Path, metavar="DIR",
                        help="another checkout (such as `git archive main | tar -x -C DIR`): its whole-process "
                             "`ctxbudget recommend` and `analyze` are timed interleaved with this tree's, and their "
                             "output compared")
    args = parser.parse_args()
    if args.log is not None:
        return compare_trees(args)
    policy = engine.load_policy("default")
    with tempfile.TemporaryDirectory() as folder:
        big, small = Path(folder) / "big.jsonl", Path(folder) / "small.jsonl"
        seconds, _, known = timed(1, generate, big, args.records)
        if args.copies > 1:
            replicate(big, args.copies)
            known = {agent: (runs * args.copies, exceeded * args.copies) for agent, (runs, exceeded) in known.items()}
            args.records *= args.copies
        generate(small, args.small)
        print(f"log: {args.records:,} records, {big.stat().st_size / 2**20:,.0f} MiB (generated in {seconds:.1f} s); "
              f"{os.cpu_count()} CPUs; best and median of {args.repeat}")
        # correctness first, then the timings, interleaved round by round (a shared machine drifts)
        assert json_loop(big) == args.records
        naive = json_loop_with_lists(big)
        assert {a: (v["runs"], v["exceeded"]) for a, v in naive.items()} == known
        analysis, recommendations = analyze_and_recommend(policy, big)
        check(analysis, known)
        assert len(recommendations) == len(known)
        if not args.no_lines:
            check(analyze_and_recommend(policy, big, fast=False)[0], known)
        assert duckdb_floor(big) == known and duckdb_floor(big, kinds=False) == known
        methods = [("baseline: json loop (parse only)", json_loop, {}),
                   ("baseline: json loop + lists (seed-style)", json_loop_with_lists, {}),
                   ("floor: DuckDB, keys as JSON, sums per agent", duckdb_floor, {}),
                   ("floor: DuckDB, typed (kinds lost), sums per agent", duckdb_floor, {"kinds": False})]
        if not args.no_lines:
            methods.append(("DuckDB, line by line: analyze + recommend", analyze_and_recommend,
                            {"policy": policy, "fast": False}))
        methods += [("DuckDB: analyze + recommend", analyze_and_recommend, {"policy": policy}),
                    ("DuckDB: `ctxbudget recommend` whole process", whole_process, {})]
        if args.baseline_tree is not None:
            assert whole_process(big, args.baseline_tree) == whole_process(big), "the baseline tree answers otherwise"
            methods.append(("baseline tree: `ctxbudget recommend` whole process", whole_process,
                            {"tree": args.baseline_tree}))
        times: dict[str, list[float]] = {label: [] for label, _, _ in methods}
        cpu: dict[str, list[float]] = {label: [] for label, _, _ in methods}
        for _ in range(args.repeat):
            for label, function, kwargs in methods:
                began, used = time.perf_counter(), _cpu_seconds()
                function(path=big, **kwargs)
                times[label].append(time.perf_counter() - began)
                cpu[label].append(_cpu_seconds() - used)
        rows = [(label, min(times[label]), statistics.median(times[label]), statistics.median(cpu[label]))
                for label, _, _ in methods]
        width = max(len(row[0]) for row in rows)
        loop = rows[0][2]
        for label, best, median, seconds in rows:
            print(f"  {label:<{width}}  best {best:5.2f} s  median {median:5.2f} s  (CPU {seconds:5.2f} s)  "
                  f"{args.records / best / 1e3:5.0f} k records/s  {median / loop:4.2f}× the json loop")
        actions: dict[str, int] = defaultdict(int)
        for rec in recommendations:
            actions[rec.action] += 1
        print("  recommendations: " + ", ".join(f"{n} {a}" for a, n in sorted(actions.items())))
        if args.no_memory:
            return 0
        print("peak memory of a fresh process (VmHWM; workers: ru_maxrss):")
        for how, label in (("json", "baseline: json loop + lists"), ("lines", "DuckDB, line by line"),
                           ("duckdb", "DuckDB")):
            if how == "lines" and args.no_lines:
                continue
            (own_small, workers_small), (own_big, workers_big) = peak_kib(small, how), peak_kib(big, how)
            workers = (f" (largest worker {workers_small / 1024:.0f} → {workers_big / 1024:.0f} MiB)"
                       if workers_big else "")
            print(f"  {label:<32}  {args.small:,} records {own_small / 1024:4.0f} MiB → {args.records:,} records "
                  f"{own_big / 1024:4.0f} MiB{workers}")
    return 0


def compare_trees(args: argparse.Namespace) -> int:
    """Whole-process `recommend` and `analyze` on ``args.log``, this tree against ``args.baseline_tree``,
    interleaved (the order alternates each round); medians, CPU and the ratio, after checking both answer alike."""
    if args.baseline_tree is None:
        sys.exit("--log needs --baseline-tree")
    trees = {"this tree": ROOT, "baseline": args.baseline_tree}
    print(f"log: {args.log} ({args.log.stat().st_size / 2**20:,.0f} MiB); {os.cpu_count()} CPUs; "
          f"medians of {args.repeat}, interleaved")
    for command in ("recommend", "analyze"):
        outputs = {name: whole_process(args.log, tree, command) for name, tree in trees.items()}
        assert outputs["this tree"] == outputs["baseline"], f"the trees' `{command}` outputs differ"
        times: dict[str, list[float]] = {name: [] for name in trees}
        cpu: dict[str, list[float]] = {name: [] for name in trees}
        for round_ in range(args.repeat):
            for name, tree in (list(trees.items()) if round_ % 2 == 0 else list(trees.items())[::-1]):
                began, used = time.perf_counter(), _cpu_seconds()
                whole_process(args.log, tree, command)
                times[name].append(time.perf_counter() - began)
                cpu[name].append(_cpu_seconds() - used)
        for name in trees:
            print(f"  `ctxbudget {command}`, {name:<9}  median {statistics.median(times[name]):5.2f} s  best "
                  f"{min(times[name]):5.2f} s  (CPU {statistics.median(cpu[name]):5.2f} s)")
        print(f"  ratio, this tree / baseline (medians): "
              f"{statistics.median(times['this tree']) / statistics.median(times['baseline']):.2f}  "
              f"(CPU {statistics.median(cpu['this tree']) / statistics.median(cpu['baseline']):.2f})")
    return 0


# -- pytest-benchmark ----------------------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - the script needs no pytest
    pytest = None

if pytest is not None:
    RECORDS = int(os.environ.get("CTXBUDGET_BENCH_RECORDS", "1000000"))

    @pytest.fixture(scope="module")
    def log(tmp_path_factory):
        path = tmp_path_factory.mktemp("usage") / "usage.jsonl"
        return path, generate(path, RECORDS)

    @pytest.mark.parametrize("name", ["json loop (parse only)", "json loop + lists (seed-style)",
                                      "floor: keys as JSON", "floor: typed", "analyze + recommend", "analyze + recommend (line by line)",
                                      "recommend, whole process"])
    def test_usage_log(benchmark, log, name):
        path, known = log
        policy = engine.load_policy("default")
        if name.startswith("analyze + recommend"):
            fast = "line by line" not in name
            analysis, _ = analyze_and_recommend(policy, path, fast=fast)
            check(analysis, known)
            benchmark.pedantic(analyze_and_recommend, args=(policy, path), kwargs={"fast": fast},
                               rounds=3, iterations=1)
        elif name.startswith("floor"):
            kinds = name.endswith("JSON")
            assert duckdb_floor(path, kinds=kinds) == known
            benchmark.pedantic(duckdb_floor, args=(path,), kwargs={"kinds": kinds}, rounds=3, iterations=1)
        elif name.startswith("recommend"):
            benchmark.pedantic(whole_process, args=(path,), rounds=3, iterations=1)
        elif name.startswith("json loop +"):
            benchmark.pedantic(json_loop_with_lists, args=(path,), rounds=3, iterations=1)
        else:
            benchmark.pedantic(json_loop, args=(path,), rounds=3, iterations=1)


if __name__ == "__main__":
    sys.exit(main())
