"""A large generated memory root (100,000 files by default) for ``bench_pack_bigroot.py``.

The seed's layout, a few folders deep (``patterns/<area>/<year>/…``, ``specialists/<name>/recent/<year>/<month>/…``),
files from a few hundred bytes to a few KiB (log-normal, median about 1.2 KiB; one in 200 is 8–40 KiB and
split at its headings), each about one topic of ``memory_store.TOPICS`` in that topic's words mixed with the
words every data team shares, sidecars beside one file in five. Deterministic for a seed; built from a pool of
generated sentences so that 100,000 files take seconds to write, not minutes.

    python benchmarks/big_store.py DIR [FILES]
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from memory_store import AGENTS, COMMON, NOW, TOPICS  # noqa: E402

AREAS = ("modelling", "operations", "platform", "governance", "analytics", "ingestion", "reporting", "infra")
YEARS = ("2024", "2025", "2026")
VERSION = 1  # bump when the store's contents change (a cached store of another version is rebuilt)


def _sentences(rng: random.Random, words: list[str], count: int) -> list[str]:
    out = []
    for _ in range(count):
        share = rng.uniform(0.35, 0.6)
        picked = [rng.choice(COMMON) if rng.random() < share else rng.choice(words) for _ in range(rng.randint(8, 18))]
        out.append(" ".join(picked).capitalize() + ".")
    return out


def _folder(rng: random.Random, owner: str) -> str:
    if owner == "global":
        base = rng.choice(["patterns", "recent"])
        return f"{base}/{rng.choice(AREAS)}/{rng.choice(YEARS)}"
    kind = rng.choice(["patterns", "patterns", "recent", "intermediate"])
    if kind == "patterns":
        return f"{owner}/patterns/{rng.choice(AREAS)}"
    return f"{owner}/{kind}/{rng.choice(YEARS)}/{rng.randint(1, 12):02d}"


def generate(root: str | os.PathLike, files: int = 100_000, seed: int = 17) -> int:
    """Write ``files`` markdown files (and their sidecars) under ``root``; returns the markdown bytes written."""
    rng = random.Random(seed)
    root = Path(root)
    topics = list(TOPICS)
    pools = {t: _sentences(rng, TOPICS[t][2].split(), 400) for t in topics}
    made: set[str] = set()
    written = 0
    for n in range(files):
        topic = rng.choice(topics)
        owner, title, _ = TOPICS[topic]
        if owner != "global" and rng.random() < 0.15:
            owner = rng.choice(["global"] + AGENTS)
        folder = _folder(rng, owner)
        size = int(min(6000.0, max(200.0, rng.lognormvariate(7.1, 0.7))))  # bytes: median ~1.2 KiB
        if rng.random() < 0.005:
            size = rng.randint(8_000, 40_000)
        pool = pools[topic]
        parts = [f"# {title}: note {n}\n"]
        length, section = 0, 0
        while length < size:
            if length and rng.random() < 0.3:
                section += 1
                parts.append(f"\n## {title} part {section}\n")
            paragraph = " ".join(rng.choice(pool) for _ in range(rng.randint(2, 5)))
            parts.append("\n" + paragraph + "\n")
            length += len(paragraph) + 2
        text = "".join(parts).encode("utf-8")
        if folder not in made:
            os.makedirs(root / folder, exist_ok=True)
            made.add(folder)
        full = root / folder / f"{topic}-{n:06d}.md"
        full.write_bytes(text)
        written += len(text)
        stamp = NOW - rng.randint(0, 120) * 86400
        os.utime(full, (stamp, stamp))
        if rng.random() < 0.2:
            meta = {"use_count": rng.randint(0, 20), "confidence": round(rng.uniform(0.4, 1.0), 2),
                    "last_used": int(NOW - rng.randint(0, 60) * 86400)}
            full.with_suffix(".metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    return written


def cached(files: int = 100_000, base: str | None = None) -> Path:
    """A generated store of ``files`` files, kept between runs under ``base`` (default: the system's temporary
    folder, or ``$CTXBUDGET_BENCH_STORE``): writing 100,000 files is slower than what is measured on them."""
    import tempfile

    base = base or os.environ.get("CTXBUDGET_BENCH_STORE") or tempfile.gettempdir()
    root = Path(base) / f"ctxbudget-bigroot-v{VERSION}-{files}"
    done = root / ".complete"
    if not done.exists():
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        generate(root, files)
        done.write_text("ok\n")  # a dot-file: the index never sees it
    return root


if __name__ == "__main__":
    target = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    target.mkdir(parents=True, exist_ok=True)
    print(f"{generate(target, count) / 1e6:.1f} MB of markdown in {count:,} files under {target}")
