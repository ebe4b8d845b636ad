"""A deterministic generated memory store, a labelled dev set over it, and the seed's loader, for
``bench_pack.py``.

The store has the seed's layout: global ``patterns/`` and ``recent/``, and per agent
``<specialists|roles>/<name>/{patterns,recent,intermediate}/``, with sidecars on some files. Each file is
about one topic (its own vocabulary, mixed with the vocabulary every data team shares), some are long and
sectioned, some are meeting notes that touch many topics lightly. A task of the dev set is written about one
topic in words partly its own; the files a senior engineer would want loaded are that topic's files the
agent can see (its own and the global ones).

The seed's loader (``seed_pack``) is written from the issue's description of the public project's: read and
count every file on every call, score 0.3·recency + 0.3·usage + 0.4·context (context: the share of the
agent's name, the task's technologies and keywords found as substrings of the file), +0.3 for agent-specific
files, sort, and load greedily, stopping at the first file that does not fit; the profile's scope weights
are ignored.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import NamedTuple

COMMON = ("data pipeline model table query warehouse team run job schema column source report dashboard "
          "change review owner process daily nightly production issue fix update check note decision").split()

# topic id -> (owner: "global" or agent, title, its vocabulary)
TOPICS: dict[str, tuple[str, str, str]] = {
    "naming": ("global", "Naming conventions",
               "naming prefix suffix staging intermediate marts snake case alias convention"),
    "sql-style": ("global", "SQL style guide",
                  "cte lowercase trailing comma indentation formatting linting sqlfluff readability"),
    "incidents": ("global", "Incident response",
                  "incident oncall pager severity postmortem escalation outage acknowledge runbook"),
    "quality": ("global", "Data quality checks",
                "freshness anomaly unique not_null accepted values threshold alerting expectations"),
    "git": ("global", "Git workflow", "branch pull request merge squash rebase commit reviewer approval release"),
    "costs": ("global", "Cost guardrails", "credits budget quota spend monitor overage chargeback forecast savings"),
    "glossary": ("global", "Business glossary",
                 "arr churn retention cohort definition metric revenue customer lifetime"),
    "security": ("global", "Security and access",
                 "pii masking encryption secrets rotation audit compliance gdpr access"),
    "incremental": ("specialists/dbt-expert", "Incremental models",
                    "incremental merge unique_key lookback is_incremental watermark late arriving full refresh"),
    "dbt-tests": ("specialists/dbt-expert", "dbt testing",
                  "generic singular unit tests store_failures severity warn relationships fixtures"),
    "macros": ("specialists/dbt-expert", "Macros and Jinja",
               "macro jinja dispatch adapter generate_schema_name template render ref source"),
    "snapshots": ("specialists/dbt-expert", "Snapshots",
                  "snapshot scd type2 dbt_valid_to check strategy timestamp invalidate hard deletes"),
    "semantic": ("specialists/dbt-expert", "Semantic layer",
                 "semantic metric measure dimension entity time spine metricflow saved query"),
    "dbt-ci": ("specialists/dbt-expert", "dbt CI and deferral",
               "slim ci state modified defer manifest artifacts clone selector"),
    "sizing": ("specialists/snowflake-expert", "Warehouse sizing",
               "warehouse size xsmall large multi cluster scaling queuing spilling concurrency"),
    "clustering": ("specialists/snowflake-expert", "Clustering keys",
                   "clustering key pruning micro partitions depth overlap reclustering automatic"),
    "rbac": ("specialists/snowflake-expert", "Role-based access",
             "role grant securityadmin future grants functional access hierarchy privileges"),
    "streams": ("specialists/snowflake-expert", "Streams and tasks",
                "stream task serverless dag stale offset change tracking cron"),
    "query-tuning": ("specialists/snowflake-expert", "Query tuning",
                     "query profile join explosion qualify result cache bytes scanned operator"),
    "snowpipe": ("specialists/snowflake-expert", "Snowpipe loading",
                 "snowpipe stage copy into file format notification ingestion latency"),
    "principles": ("roles/data-architect-role", "Architecture principles",
                   "principle replay idempotent ownership contract batch streaming tradeoff"),
    "landscape": ("roles/data-architect-role", "System landscape",
                  "salesforce fivetran segment zendesk hightouch reverse etl integration landscape"),
    "contracts": ("roles/data-architect-role", "Data contracts",
                  "contract producer consumer versioning breaking change schema registry agreement"),
    "lakehouse": ("roles/data-architect-role", "Lakehouse evaluation",
                  "iceberg lakehouse catalog parquet object storage spark interoperability"),
    "modelling": ("roles/data-architect-role", "Dimensional modelling",
                  "kimball star schema conformed dimension fact grain bridge surrogate key"),
    "dashboards": ("specialists/tableau-expert", "Tableau dashboards",
                   "tableau extract workbook calculated field lod filter action published datasource"),
    "tableau-perf": ("specialists/tableau-expert", "Tableau performance",
                     "performance recording extract refresh rendering viz query fusion"),
    "flows": ("specialists/prefect-expert", "Prefect flows",
              "prefect flow deployment work pool retries schedule agent block"),
    "prefect-ops": ("specialists/prefect-expert", "Prefect operations",
                    "automation notification concurrency limit worker infrastructure logs"),
    "dlt": ("specialists/dlthub-expert", "dlt pipelines",
            "dlt resource source incremental cursor normalizer destination schema evolution"),
    "aws": ("specialists/aws-expert", "AWS infrastructure", "s3 iam lambda vpc terraform cloudwatch kms bucket policy"),
    "dq-program": ("specialists/data-quality-specialist", "Data quality programme",
                   "elementary great expectations monitors incidents sla scorecard coverage"),
    "finops": ("specialists/cost-optimization-specialist", "FinOps",
               "finops attribution tagging rightsizing commitment showback unit economics"),
    "ae-workflow": ("roles/analytics-engineer-role", "Analytics engineering workflow",
                    "stakeholder requirements ticket scoping backlog handoff documentation"),
    "de-ingest": ("roles/data-engineer-role", "Ingestion engineering",
                  "cdc debezium kafka connector backfill partition replay throughput"),
    "research": ("roles/research-role", "Research notes",
                 "experiment hypothesis benchmark evaluation literature prototype findings"),
}
AGENTS = sorted({owner for owner, _, _ in TOPICS.values() if owner != "global"})


class DevTask(NamedTuple):
    agent: str
    task: str
    topic: str
    relevant: frozenset  # paths


def _sentence(rng: random.Random, words: list[str], common_share: float) -> str:
    n = rng.randint(9, 18)
    out = [rng.choice(COMMON) if rng.random() < common_share else rng.choice(words) for _ in range(n)]
    return " ".join(out).capitalize() + "."


def _paragraph(rng: random.Random, words: list[str], common_share: float) -> str:
    return " ".join(_sentence(rng, words, common_share) for _ in range(rng.randint(3, 7)))


def generate(root: str | os.PathLike, files: int = 2000, seed: int = 7, tokens_per_file: int = 1500) -> dict:
    """Write a store of ``files`` markdown files under ``root``; returns {path: topic} (``None`` for notes
    that mix topics). Deterministic for a seed."""
    rng = random.Random(seed)
    root = Path(root)
    topics = list(TOPICS)
    labels: dict[str, str | None] = {}
    now = 1_790_000_000  # fixed mtimes and sidecar dates: recency does not depend on the day the store was made
    for n in range(files):
        roll = rng.random()
        if roll < 0.1:  # meeting notes touching several topics
            owner = rng.choice(["global"] + AGENTS)
            mix = rng.sample(topics, 4)
            words = [w for t in mix for w in TOPICS[t][2].split()]
            topic, title = None, "Meeting notes"
        else:
            topic = rng.choice(topics)
            owner, title, vocab = TOPICS[topic]
            words = vocab.split()
            if owner != "global" and rng.random() < 0.15:  # a topic note kept by another agent
                owner = rng.choice(["global"] + AGENTS)
        if owner == "global":
            folder = rng.choice(["patterns", "recent"])
        else:
            folder = f"{owner}/{rng.choice(['patterns', 'patterns', 'recent', 'intermediate'])}"
        size = int(rng.lognormvariate(0, 0.8) * tokens_per_file * 0.72)
        if rng.random() < 0.02:
            size = rng.randint(10_000, 30_000)  # a few long documents, split at headings
        common_share = rng.uniform(0.35, 0.6)
        parts = [f"# {title}: note {n}\n"]
        length = 0
        section = 0
        while length < size * 4:
            if length and rng.random() < 0.35:
                section += 1
                parts.append(f"\n## {title} part {section}\n")
            paragraph = _paragraph(rng, words, common_share)
            parts.append("\n" + paragraph + "\n")
            length += len(paragraph)
        path = f"{folder}/{(topic or 'notes')}-{n:05d}.md"
        full = root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text("".join(parts), encoding="utf-8")
        stamp = now - rng.randint(0, 120) * 86400
        os.utime(full, (stamp, stamp))
        if rng.random() < 0.3:
            meta = {"use_count": rng.randint(0, 20), "confidence": round(rng.uniform(0.4, 1.0), 2),
                    "last_used": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - rng.randint(0, 60) * 86400))}
            full.with_suffix(".metadata.json").write_text(json.dumps(meta), encoding="utf-8")
        labels[path] = topic
    return labels


NOW = 1_790_000_000.0

TASK_TEMPLATES = [
    "How should we handle {a} and {b} here?",
    "Review the {a} setup; the {b} looks wrong after yesterday's run.",
    "Why does {a} fail, and what does it mean for {b}?",
    "Write down our approach to {a} with {b} for the new project.",
]


def dev_set(labels: dict, seed: int = 11, per_agent: int = 3) -> list[DevTask]:
    """Tasks (agent, text about one topic) with the files relevant to them."""
    rng = random.Random(seed)
    tasks = []
    for agent in AGENTS:
        own = [t for t, (owner, _, _) in TOPICS.items() if owner == agent]
        shared = [t for t, (owner, _, _) in TOPICS.items() if owner == "global"]
        for topic in rng.sample(own, min(per_agent, len(own))) + rng.sample(shared, 1):
            words = TOPICS[topic][2].split()
            a, b = rng.sample(words, 2)
            text = rng.choice(TASK_TEMPLATES).format(a=a, b=b)
            relevant = frozenset(p for p, t in labels.items() if t == topic and _visible(p, agent))
            if relevant:
                tasks.append(DevTask(agent, text, topic, relevant))
    return tasks


def _visible(path: str, agent: str) -> bool:
    return path.startswith(("patterns/", "recent/")) or path.startswith(agent + "/")


# -- the seed's loader -----------------------------------------------------------------------------------

TECHNOLOGIES = ("dbt", "snowflake", "tableau", "prefect", "dlt", "aws", "fivetran", "salesforce", "spark")


def seed_pack(root: str, agent: str, task: str, budget: int, count, now: float = NOW) -> list[tuple[str, int]]:
    """The seed's loader: [(path, tokens)] loaded, in order."""
    name = agent.rsplit("/", 1)[1]
    lowered = task.lower()
    keys = [name] + [t for t in TECHNOLOGIES if t in lowered] + [w for w in lowered.replace("?", " ").replace(
        ".", " ").replace(",", " ").split() if len(w) > 3]
    items = []
    for base, specific in (("patterns", False), ("recent", False), (f"{agent}/patterns", True),
                           (f"{agent}/recent", True), (f"{agent}/intermediate", True)):
        folder = os.path.join(root, base)
        if not os.path.isdir(folder):
            continue
        for dirpath, _, names in os.walk(folder):
            for file_name in sorted(names):
                if not file_name.endswith(".md"):
                    continue
                path = os.path.join(dirpath, file_name)
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
                tokens = count(text)
                meta = {}
                sidecar = os.path.splitext(path)[0] + ".metadata.json"
                if os.path.exists(sidecar):
                    try:
                        with open(sidecar, encoding="utf-8") as handle:
                            meta = json.load(handle)
                    except ValueError:
                        meta = {}
                days = (now - os.stat(path).st_mtime) / 86400
                recency = max(0.0, 1 - days / 30)
                usage = min(1.0, meta.get("use_count", 0) / 10)
                body = text.lower()
                context = sum(1 for k in keys if k in body) / len(keys)
                score = 0.3 * recency + 0.3 * usage + 0.4 * context + (0.3 if specific else 0.0)
                items.append((score, os.path.relpath(path, root).replace(os.sep, "/"), tokens))
    items.sort(key=lambda i: -i[0])
    loaded, total = [], 0
    for _, path, tokens in items:
        if total + tokens > budget:
            break
        loaded.append((path, tokens))
        total += tokens
    return loaded
