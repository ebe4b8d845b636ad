"""ctxbudget pack --agent A (--task T | --tier X)"""

from __future__ import annotations

from engine.cli.options import add_context, add_format, add_policy

TYPE_CHECKING = False  # a warm pack's command line is read without argparse (engine.cli.quick): none at import
if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from engine.cli.render import Result

HELP = "the memory an agent should load for a task, within its budget (markdown, JSON manifest or paths)"
DESCRIPTION = """\
Choose the memory AGENT loads for a task: allocate its budget (the tier detected from --task, or --tier),
split it across scopes by the profile's weights, and fill each scope with the most relevant markdown
under the memory root (docs/memory.md). Records one usage record (--no-log to skip).

  ctxbudget pack --agent dbt-expert --task "Why is fct_orders slow in the nightly run?"
  ctxbudget pack --agent snowflake-expert --tier complex --format json
  ctxbudget pack --agent data-architect --task "Review the revenue pipeline" --budget 8000 --explain

The memory root is --root DIR, else the policy's memory.root (./.claude/memory); when that does not exist
the bundled sample store is packed (and stderr says so). --format md (default) prints the memory ready to
inject, json the manifest (budget, per-scope allowance and use, loaded and skipped items), paths the
loaded files; --explain a table of what loaded and why (with --format json, the manifest says it: each
loaded item's score and why).

The memory index is brought up to date first (a cold index of a large root takes a while: a progress bar
shows on a terminal). --index-seconds S stops that after S seconds and packs from what is indexed, saying so
on stderr and in the manifest's warnings; the next pack goes on where it stopped."""
ORDER = 8


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent", "-a", required=True,
                        help="agent name, full (specialists/dbt-expert) or short (dbt-expert)")
    parser.add_argument("--task", "-t", help="the task (its tier is detected, and it ranks the memory)")
    parser.add_argument("--tier", help="the complexity tier (instead of detecting one from --task)")
    parser.add_argument("--root", metavar="DIR", help="the memory root (default: the policy's memory.root, "
                        "./.claude/memory; else the bundled sample)")
    parser.add_argument("--budget", type=_tokens, metavar="N", help="use N tokens instead of the allocated budget "
                        "(split by the profile's weights)")
    add_format(parser, default="md", paths="the loaded files")
    parser.add_argument("--explain", action="store_true", help="a table of the loaded items and why, per scope")
    parser.add_argument("--touch", action="store_true",
                        help="add one use to the loaded files' sidecars (use_count, last_used)")
    parser.add_argument("--no-log", action="store_true", help="do not write a usage record")
    parser.add_argument("--index-seconds", type=_seconds, metavar="S",
                        help="stop bringing the memory index up to date after S seconds and pack from what is "
                             "indexed (the next pack goes on); default: index to the end, with progress on a terminal")
    # (not engine.cli.log_options.add_log: that module imports pathlib and datetime, a hook's start-up)
    parser.add_argument("--log", metavar="PATH",
                        help="usage log (default: $CTXBUDGET_LOG, else the policy's usage_log, else "
                             "~/.local/state/ctxbudget/usage.jsonl)")
    add_context(parser)
    add_policy(parser)


def _refused(message: str) -> Exception:
    """argparse's error for a value its type refuses (argparse imported only then: it reads that command line)."""
    import argparse

    return argparse.ArgumentTypeError(message)


def _tokens(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise _refused(f"not a number of tokens: {text!r}") from None
    if value < 0:
        raise _refused("a budget cannot be negative")
    from engine.budget import MAX_BUDGET

    if value > MAX_BUDGET:
        raise _refused(f"a budget is at most {MAX_BUDGET:,} tokens")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _refused(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 86400:  # also refuses nan
        raise _refused("seconds must be from 0 to 86400")
    return value


def memory_root(args: argparse.Namespace, policy) -> str:
    """--root, else the policy's root when it exists, else the sample store (said on stderr)."""
    import os
    import sys

    from engine.diagnostics import UsageError

    if args.root is not None:
        if not os.path.isdir(args.root):
            raise UsageError(f"--root {args.root}: no such folder")
        return args.root
    configured = os.path.expanduser(policy.packer.settings.root)
    if os.path.isdir(configured):
        return configured
    from engine.resources import sample_memory_dir

    sample = sample_memory_dir()
    print(f"ctxbudget: {configured} does not exist; packing the sample memory store ({sample}). "
          "Use --root DIR for yours.", file=sys.stderr)
    return sample


def run(args: argparse.Namespace) -> Result | int:
    import sys

    from engine.cli.options import context_from, policy_from
    from engine.cli.output import printable
    from engine.cli.render import Result
    from engine.diagnostics import UsageError

    if args.task is None and args.tier is None:
        raise UsageError("pack needs --task TEXT or --tier TIER (or both)")
    policy = policy_from(args)
    full = policy.resolve_agent(args.agent)  # an unknown agent fails before anything is read
    root = memory_root(args, policy)
    log = False if args.no_log else args.log
    deadline = None
    if args.index_seconds is not None:
        from engine.pack.index import Deadline

        deadline = Deadline(args.index_seconds)

    def pack(progress=None):  # noqa: ANN001, ANN202
        return policy.pack(full, task=args.task, tier=args.tier, root=root, context=context_from(args),
                           budget=args.budget, log=log, touch=args.touch, deadline=deadline, progress=progress)

    if sys.stderr.isatty() and args.format != "json":  # a cold index of a large root takes a while: say so
        from engine.cli.progress import progress_bar

        with progress_bar(True, "indexing") as advance:
            result = pack(advance)
    else:
        result = pack()
    for path in result.stats.corrupt_sidecars:
        print(printable(f"ctxbudget: warning: {path}: corrupt sidecar ignored"), file=sys.stderr)
    if result.partial:
        from engine.pack.result import partial_warning

        print(f"ctxbudget: warning: {partial_warning(result.stats)}", file=sys.stderr)
    if result.log_error:
        print(f"ctxbudget: warning: {result.log_error}", file=sys.stderr)
    if args.explain and args.format != "json":  # the table of what loaded and why (the manifest carries the same)
        _explain(result)
        return 0
    if args.format != "json":  # the manifest is what JSON prints: md and paths render the pack itself
        return Result(None, view=result)
    manifest = result.manifest()
    manifest["root"] = root
    return Result(manifest, view=result)


def render_md(result: Result, args: argparse.Namespace) -> None:
    import sys

    text = result.view.markdown()
    if sys.stdout.isatty():  # a person reads it: a memory file's escape sequences are shown, not obeyed
        import re

        from engine.text import printable

        text = "".join(piece if piece in ("\t", "\r\n") else printable(piece, newlines=True)
                       for piece in re.split(r"(\t|\r\n)", text))
    sys.stdout.write(text)


def render_paths(result: Result, args: argparse.Namespace) -> None:
    from engine.cli.output import say

    for path in result.view.paths():
        say(path)


def _explain(result) -> None:  # noqa: ANN001 - an engine.pack.PackResult
    """--explain: the allowance and use per scope, then each loaded item and why."""
    from engine.cli.output import say, table

    a = result.allocation
    say(f"{a.agent}: {result.tokens:,} of {a.budget:,} tokens loaded — tier {a.tier} "
        f"({result.provenance.get('tier_source')}), {len(result.items)} items, {len(result.skipped)} skipped")
    table(["scope", "allowance", "used", "spilled"],
          [(s, result.allowances[s], result.used.get(s, 0), result.spilled.get(s, 0)) for s in result.allowances],
          right=(1, 2, 3))
    say()
    table(["scope", "tokens", "score", "item", "why"],
          [(i.scope, i.tokens, f"{i.score:.3f}", i.path + (f" § {i.section}" if i.section else ""), i.why)
           for i in result.items], right=(1, 2))
