"""The bounded JSON reader (engine.jsonio.loads) against plain json.loads, on the same usage-log lines and task
lines, in the same run.

    pytest benchmarks/bench_jsonio.py --benchmark-enable --benchmark-columns=min,median,ops,rounds

Target: at most 1.5× json.loads on realistic lines (the depth and number checks must stay cheap, because the
usage-log reader decodes every line with it). ``test_overhead_target`` measures the ratio in one run.
"""

from __future__ import annotations

import json
import statistics
import time

import pytest

from engine.jsonio import loads

RECORD = ('{"timestamp":"2026-11-20T10:00:00.000Z","agent":"specialists/dbt-expert","profile":"specialist-narrow",'
          '"tier":"medium","budget":20000,"tokens_loaded":11332,"usage":0.5666,"exceeded":false,'
          '"scopes":{"global":3200,"agent_patterns":8132},"alerts":[],"refused_tokens":0,"duration_s":1.234,'
          '"success":true,"error":null,"policy_hash":"sha256:0123456789abcdef"}').encode()
TASK = '{"id": "t-1042", "text": "Troubleshoot why the nightly dbt run got slow", "context": {"agent_count": 2}}'
LINES = [RECORD] * 500 + [TASK.encode()] * 500


def _read_all(decode) -> int:
    count = 0
    for line in LINES:
        count += len(decode(line))
    return count


def test_same_values() -> None:
    assert [loads(line) for line in LINES[::250]] == [json.loads(line) for line in LINES[::250]]


def test_bounded_reader(benchmark) -> None:
    assert benchmark(_read_all, loads) == _read_all(json.loads)


def test_baseline_json_loads(benchmark) -> None:
    assert benchmark(_read_all, json.loads) > 0


def test_overhead_target() -> None:
    def best(decode) -> float:
        times = []
        for _ in range(7):
            started = time.perf_counter()
            _read_all(decode)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    plain, bounded = best(json.loads), best(loads)
    assert bounded <= 1.5 * plain, f"jsonio.loads {bounded * 1e6 / len(LINES):.2f} µs/line vs json.loads " \
                                   f"{plain * 1e6 / len(LINES):.2f} µs/line"


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "--benchmark-enable"])
