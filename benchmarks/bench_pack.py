"""Memory packing: quality against the seed's loader on a labelled dev set, speed on a 2,000-file store, the
token estimator's error, and memory.

    pytest benchmarks/bench_pack.py --benchmark-enable --benchmark-columns=min,median,ops,rounds -s

The stores are generated deterministically (``memory_store.py``). Every benchmark checks its results before
timing them. Targets (issue 11): on a 2,000-file store (~3M tokens) a warm ``policy.pack`` ≤ 30 ms median and
≥ 20× the seed-style loader; the whole ``ctxbudget pack`` process ≤ 100 ms warm; index build ≥ 5 MB of
markdown a second; memory flat in the store's size. Each speed target is checked on CPU time (what the
code costs: on a machine shared with other work, wall time measures the neighbours), and the wall time
is printed beside it. Quality: per budget, the recall of relevant files (a file
counts when at least half its tokens load) and the share of loaded tokens that are relevant, for ctxbudget
and for the seed's scorer.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import memory_store  # noqa: E402

from engine import load_policy  # noqa: E402
from engine.budget import split  # noqa: E402
from engine.model import frozen_map  # noqa: E402
from engine.pack.tokens import _estimate_pieces, estimate  # noqa: E402

# The seed's loader counts every file on every call with a BPE counter (tiktoken). It is given the estimator's
# first implementation, the regular expression one piece at a time (the same counts as `estimate`, which now
# counts ASCII text ~4× faster with byte masks): the baseline the ≥ 20× target was set against, and still
# cheaper than the BPE the seed ran.
SEED_COUNTER = _estimate_pieces

TASK = "Why does the incremental merge with unique_key fail after a late arriving backfill?"
BUDGETS = (2000, 4000, 8000, 16000, 32000)


def _store_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.md"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cache")
    os.environ["CTXBUDGET_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="module")
def big(tmp_path_factory, cache) -> Path:
    root = tmp_path_factory.mktemp("store2000")
    memory_store.generate(root, files=2000, tokens_per_file=1800)
    return root


@pytest.fixture(scope="module")
def policy():
    return load_policy("default")


def _pack(policy, agent: str, task: str, budget: int | None, root: Path, tier: str = "complex"):
    allocation = policy.allocate(agent, tier)
    if budget is not None:
        weights = policy.profiles[allocation.profile].weights
        allocation = allocation._replace(budget=budget, scopes=frozen_map(split(budget, weights)))
    return policy.packer.pack(allocation, task, root=root, now=memory_store.NOW)


# -- speed ---------------------------------------------------------------------------------------------

def test_index_build_speed(big: Path, policy, tmp_path) -> None:
    from engine.pack.index import MemoryIndex

    size = _store_bytes(big)
    index = MemoryIndex(str(big), estimate, "estimate", 2000, 4 << 20, location=str(tmp_path / "index.sqlite"))
    started, cpu = time.perf_counter(), time.process_time()
    stats = index.refresh()
    cpu, seconds = time.process_time() - cpu, time.perf_counter() - started
    files, sections, tokens = index.count()
    print(f"\nindex build: {files} files, {sections} sections, {tokens:,} tokens, {size / 1e6:.1f} MB: "
          f"{size / cpu / 1e6:.1f} MB/s of CPU time ({cpu:.2f} s), {size / seconds / 1e6:.1f} MB/s wall")
    assert stats.files == files == 2000 and tokens > 2_500_000
    assert size / cpu / 1e6 >= 5.0


def test_warm_pack(benchmark, big: Path, policy) -> None:
    agent = "specialists/dbt-expert"
    first = _pack(policy, agent, TASK, None, big)  # builds the index
    assert 0 < first.tokens <= first.budget
    result = benchmark(_pack, policy, agent, TASK, None, big)
    assert [i.path for i in result.items] == [i.path for i in first.items]


def test_seed_loader(benchmark, big: Path) -> None:
    loaded = benchmark.pedantic(memory_store.seed_pack, args=(str(big), "specialists/dbt-expert", TASK, 30000,
                                                              SEED_COUNTER), rounds=3, iterations=1)
    assert 0 < sum(t for _, t in loaded) <= 30000


def _median_times(call, rounds: int) -> tuple[float, float]:
    """(median CPU ms, median wall ms) of ``call()``."""
    cpu, wall = [], []
    for _ in range(rounds):
        started, used = time.perf_counter(), time.process_time()
        call()
        cpu.append(time.process_time() - used)
        wall.append(time.perf_counter() - started)
    return statistics.median(cpu) * 1e3, statistics.median(wall) * 1e3


def test_speed_targets(big: Path, policy) -> None:
    """Warm pack ≤ 30 ms median and ≥ 20× the seed-style loader, measured in one run."""
    agent = "specialists/dbt-expert"
    _pack(policy, agent, TASK, None, big)
    pack_cpu, pack_wall = _median_times(lambda: _pack(policy, agent, TASK, None, big), 21)
    seed_cpu, seed_wall = _median_times(lambda: memory_store.seed_pack(str(big), agent, TASK, 30000, SEED_COUNTER),
                                        3)
    print(f"\nwarm policy.pack: {pack_cpu:.1f} ms CPU ({pack_wall:.1f} ms wall) median; seed-style loader "
          f"{seed_cpu:.0f} ms CPU ({seed_wall:.0f} ms wall): {seed_cpu / pack_cpu:.0f}x")
    assert pack_cpu <= 30
    assert seed_cpu / pack_cpu >= 20


def test_pack_process(big: Path, cache: Path) -> None:
    """The whole `ctxbudget pack` process, warm (policy cache and index built), ≤ 100 ms median."""
    import resource

    command = [sys.executable, "-m", "engine", "pack", "--agent", "dbt-expert", "--task", TASK, "--root", str(big),
               "--no-log", "--format", "paths"]
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(cache)}
    env.pop("CTXBUDGET_POLICY", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode compiled
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
    cpu, wall = [], []
    for _ in range(9):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        wall.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        assert done.returncode == 0 and done.stdout.count("\n") > 3, done.stderr
    cpu_ms, wall_ms = statistics.median(cpu) * 1e3, statistics.median(wall) * 1e3
    print(f"\nctxbudget pack process (warm): {cpu_ms:.0f} ms CPU, {wall_ms:.0f} ms wall, median")
    assert cpu_ms <= 100


def test_memory_is_flat_in_store_size(tmp_path_factory, cache, policy) -> None:
    """Peak memory of a warm pack does not grow with the size of the files (only the file count)."""
    peaks = {}
    for tokens in (500, 4000):
        root = tmp_path_factory.mktemp(f"flat{tokens}")
        memory_store.generate(root, files=300, tokens_per_file=tokens, seed=3)
        _pack(policy, "specialists/dbt-expert", TASK, None, root)
        tracemalloc.start()
        _pack(policy, "specialists/dbt-expert", TASK, None, root)
        peaks[tokens] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(f"\npeak memory of a warm pack, 300 files: {peaks[500] / 1e6:.2f} MB at ~500 tokens a file, "
          f"{peaks[4000] / 1e6:.2f} MB at ~4,000")
    assert peaks[4000] <= 1.5 * peaks[500] + 2_000_000  # 8x the text, not 8x the memory


# -- the estimator -------------------------------------------------------------------------------------

def test_estimator_error() -> None:
    bpe = pytest.importorskip("bpe_openai")
    from engine.resources import sample_memory_dir

    for name in ("cl100k_base", "o200k_base"):
        encoding = bpe.get_encoding(name)
        errors, total_estimate, total_exact = [], 0, 0
        for path in sorted(Path(sample_memory_dir()).rglob("*.md")):
            text = path.read_text(encoding="utf-8")
            exact, guess = len(encoding.encode_ordinary(text)), estimate(text)
            errors.append(abs(guess - exact) / exact * 100)
            total_estimate, total_exact = total_estimate + guess, total_exact + exact
        print(f"\nestimate vs {name}: mean {statistics.mean(errors):.1f} %, worst {max(errors):.1f} %, "
              f"whole store {abs(total_estimate - total_exact) / total_exact * 100:.1f} %")
        assert statistics.mean(errors) < 10 and max(errors) < 25


def test_estimator_speed(benchmark) -> None:
    from engine.resources import sample_memory_dir

    text = "".join(p.read_text(encoding="utf-8") for p in sorted(Path(sample_memory_dir()).rglob("*.md"))) * 4
    count = benchmark(estimate, text)
    assert count > 10000


# -- quality -------------------------------------------------------------------------------------------

def _score(loaded: dict[str, int], sizes: dict[str, int], relevant: frozenset) -> tuple[float, float]:
    """(recall of relevant files, share of loaded tokens that are relevant)."""
    hit = sum(1 for path in relevant if loaded.get(path, 0) * 2 >= sizes[path])
    total = sum(loaded.values())
    good = sum(t for path, t in loaded.items() if path in relevant)
    return hit / len(relevant), (good / total if total else 0.0)


def test_quality_against_the_seed(tmp_path_factory, cache, policy) -> None:
    root = tmp_path_factory.mktemp("store200")
    labels = memory_store.generate(root, files=240, seed=5)
    tasks = memory_store.dev_set(labels)
    assert len(tasks) >= 20
    sizes = {path: estimate((root / path).read_text(encoding="utf-8")) for path in labels}
    rows = []
    for budget in BUDGETS:
        ours, seed = [], []
        for task in tasks:
            pack = _pack(policy, task.agent, task.task, budget, root)
            assert pack.tokens <= budget
            loaded: dict[str, int] = {}
            for item in pack.items:
                loaded[item.path] = loaded.get(item.path, 0) + item.tokens
            ours.append(_score(loaded, sizes, task.relevant))
            seed_loaded = dict(memory_store.seed_pack(str(root), task.agent, task.task, budget, estimate))
            seed.append(_score(seed_loaded, sizes, task.relevant))
        mean = lambda values, i: statistics.mean(v[i] for v in values)  # noqa: E731
        rows.append((budget, mean(ours, 0), mean(seed, 0), mean(ours, 1), mean(seed, 1)))
    print(f"\n{len(tasks)} tasks over {len(labels)} files")
    print("budget   recall ctxbudget / seed   relevant-token share ctxbudget / seed")
    for budget, r_ours, r_seed, s_ours, s_seed in rows:
        print(f"{budget:>6}   {r_ours:>15.2f} / {r_seed:.2f}   {s_ours:>25.2f} / {s_seed:.2f}")
    for budget, r_ours, r_seed, s_ours, s_seed in rows:
        assert r_ours >= r_seed and s_ours >= s_seed, budget
