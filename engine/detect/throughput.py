"""Timing a detector over a corpus of tasks (``ctxbudget bench``): throughput and per-task latency."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence


class Throughput(NamedTuple):
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

    def to_dict(self) -> dict:
        """Written out: the JSON form rounds the figures and adds the rate."""
        return {"tasks": self.tasks, "calls": self.calls, "seconds": round(self.seconds, 4),
                "tasks_per_second": round(self.per_second), "p50_us": round(self.p50_us, 2),
                "p99_us": round(self.p99_us, 2), "mean_chars": round(self.mean_chars, 1)}


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
