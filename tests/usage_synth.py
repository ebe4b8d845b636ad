"""Synthetic usage logs with known answers, in the native and the seed's record format."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Mapping

from engine.budget import split

START = datetime(2025, 10, 1, tzinfo=timezone.utc)

# agent, profile, budget (medium tier), runs, usage, exceeded runs, scope weights used to split the load
KNOWN = {
    # over budget in 30 of 100 runs -> upgrade
    "specialists/dbt-expert": ("specialist-narrow", 20000, 100, 0.70, 30, {"global": 0.2, "agent_recent": 0.3,
                                                                          "agent_patterns": 0.5}),
    # averaging 30 % over 50 runs -> downgrade
    "specialists/aws-expert": ("specialist-broad", 35000, 50, 0.30, 0, {"global": 0.25, "agent_recent": 0.25,
                                                                       "agent_patterns": 0.5}),
    # 5 runs -> insufficient data
    "specialists/tableau-expert": ("specialist-narrow", 20000, 5, 0.70, 0, {"global": 0.2, "agent_recent": 0.3,
                                                                            "agent_patterns": 0.5}),
    # steady at 80 %, scopes as weighted -> maintain
    "roles/analytics-engineer-role": ("role-coordinator", 50000, 100, 0.80, 0, {"global": 0.3, "agent_recent": 0.2,
                                                                                "agent_patterns": 0.5}),
    # 70 %, but agent_patterns takes 70 % instead of 50 -> adjust weights
    "specialists/snowflake-expert": ("specialist-narrow", 20000, 40, 0.70, 0, {"global": 0.1, "agent_recent": 0.2,
                                                                               "agent_patterns": 0.7}),
}

EXPECTED = {
    "specialists/dbt-expert": "upgrade",
    "specialists/aws-expert": "downgrade",
    "specialists/tableau-expert": "insufficient-data",
    "roles/analytics-engineer-role": "maintain",
    "specialists/snowflake-expert": "adjust-weights",
}


def native_record(when: datetime, agent: str, profile: str, budget: int, loaded: int,
                  scopes: Mapping[str, int], tier: str = "medium") -> dict:
    return {"timestamp": when.isoformat().replace("+00:00", "Z"), "agent": agent, "profile": profile, "tier": tier,
            "budget": budget, "tokens_loaded": loaded, "usage": round(loaded / budget, 6),
            "exceeded": loaded > budget, "scopes": dict(scopes), "alerts": [], "refused_tokens": 0,
            "duration_s": 1.0, "success": True, "error": None, "policy_hash": None}


def seed_record(when: datetime, agent: str, profile: str, budget: int, loaded: int,
                scopes: Mapping[str, int], tier: str = "medium", key: str = "scopes_loaded") -> dict:
    usage = loaded / budget
    warnings = [label for label, t in (("75%", 0.75), ("90%", 0.9), ("100%", 1.0)) if usage >= t]
    return {"timestamp": when.isoformat().replace("+00:00", "Z"), "agent": agent, "profile": profile,
            "task_complexity": tier, "budget_allocated": budget, "tokens_loaded": loaded,
            "usage_pct": round(usage * 100, 2), key: dict(scopes), "exceeded_budget": loaded > budget,
            "warnings_triggered": warnings}


def known_runs(seed: int = 7) -> Iterator[tuple[datetime, str, str, int, int, dict]]:
    """The runs of :data:`KNOWN`, interleaved, one every ten minutes from :data:`START`."""
    rng = random.Random(seed)
    runs = []
    for agent, (profile, budget, count, usage, exceeded, weights) in KNOWN.items():
        for i in range(count):
            level = 1.10 if i < exceeded else usage + rng.uniform(-0.05, 0.05)
            loaded = int(budget * level)
            runs.append((agent, profile, budget, loaded, split(loaded, weights)))
    rng.shuffle(runs)
    for i, (agent, profile, budget, loaded, scopes) in enumerate(runs):
        yield START + timedelta(minutes=10 * i), agent, profile, budget, loaded, scopes


def write_known_log(path: Path, fmt: str = "native") -> Path:
    """Write the known-answer log in ``fmt``: native, seed (scopes_loaded) or seed-breakdown."""
    with open(path, "w", encoding="utf-8") as out:
        for when, agent, profile, budget, loaded, scopes in known_runs():
            if fmt == "native":
                record = native_record(when, agent, profile, budget, loaded, scopes)
            else:
                key = "scope_breakdown" if fmt == "seed-breakdown" else "scopes_loaded"
                record = seed_record(when, agent, profile, budget, loaded, scopes, key=key)
            out.write(json.dumps(record) + "\n")
    return path
