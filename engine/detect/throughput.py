"""Timing a detector over a corpus of tasks (``ctxbudget bench``): throughput and per-task latency."""

from __future__ import annotations

import time
from pathlib import Path
from engine.records import Record

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable, Sequence

from engine.records import rounded, to_dict


class Throughput(Record):
    """Detections timed one by one over a corpus."""

    tasks: int  # distinct tasks in the corpus
    calls: int  # detections timed
    seconds: float  # wall time of the timed calls
    p50_us: float
    p99_us: float
    mean_chars: float

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    @property
    def tasks_per_second(self) -> int:
        return round(self.per_second)

    # The JSON form: the figures rounded, the rate after the time.
    _json_fields = ("tasks", "calls", "seconds", "tasks_per_second", "p50_us", "p99_us", "mean_chars")
    _json_convert = {"seconds": rounded(4), "p50_us": rounded(2), "p99_us": rounded(2), "mean_chars": rounded(1)}
    to_dict = to_dict


def sample_corpus() -> Path:
    """The bundled corpus of realistic tasks: 62 labelled tasks, most of 40-200 characters, a tenth of 500-900."""
    return Path(__file__).with_name("sample_tasks.jsonl")


def time_detection(detect: Callable[[str], Any], texts: Sequence[str], seconds: float = 1.0,
                   warmup: int = 200) -> Throughput:
    """Call ``detect`` on the texts round-robin for about ``seconds``, timing every call."""
    if not texts:
        raise ValueError("no tasks to time")
    clock = time.perf_counter_ns
    for i in range(warmup):
        detect(texts[i % len(texts)])
    samples: list[int] = []
    deadline = clock() + int(seconds * 1e9)
    started = clock()
    while True:
        for text in texts:
            before = clock()
            detect(text)
            samples.append(clock() - before)
        if clock() >= deadline:
            break
    elapsed = (clock() - started) / 1e9
    samples.sort()
    return Throughput(len(texts), len(samples), elapsed, samples[len(samples) // 2] / 1e3,
                      samples[min(len(samples) - 1, int(len(samples) * 0.99))] / 1e3,
                      sum(map(len, texts)) / len(texts))
