"""ctxbudget index [--root DIR]"""

from __future__ import annotations

from engine.cli.options import add_format, add_policy

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from engine.cli.render import Result

HELP = "build or refresh the memory index (SQLite) of a memory root"
DESCRIPTION = """\
Build or refresh the SQLite index of the memory root that `pack` reads: every markdown file's size,
mtime, hash, token count, sidecar metadata and text. Only files that changed are read again; `pack`
refreshes the index too, so this is for warming it up (with a progress bar on a terminal) and for
checking what it holds.

  ctxbudget index --root .claude/memory
  ctxbudget index --json"""
ORDER = 9


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", metavar="DIR", help="the memory root (default: the policy's memory.root)")
    add_policy(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> Result:
    import os
    import sys

    from engine.cli.options import policy_from
    from engine.cli.output import printable
    from engine.cli.progress import progress_bar
    from engine.cli.render import Result
    from engine.diagnostics import UsageError

    policy = policy_from(args)
    root = args.root if args.root is not None else os.path.expanduser(policy.packer.settings.root)
    if not os.path.isdir(root):
        raise UsageError(f"memory root {root}: no such folder (--root DIR, or the policy's memory.root)")
    index = policy.packer.index(root)
    with progress_bar(sys.stderr.isatty() and args.format != "json", "indexing") as advance:
        stats = index.refresh(advance)
    files, sections, tokens = index.count()
    for path in stats.corrupt_sidecars:
        print(printable(f"ctxbudget: warning: {path}: corrupt sidecar ignored"), file=sys.stderr)
    result = {"root": root, "index": stats.location, "files": stats.files, "indexed": files,
              "sections": sections, "tokens": tokens, "changed": stats.changed, "removed": stats.removed,
              "bytes_read": stats.bytes_read, "rebuilt": stats.rebuilt,
              "skipped": [{"path": p, "reason": r} for p, r in sorted(stats.skipped.items())],
              "corrupt_sidecars": list(stats.corrupt_sidecars)}
    return Result(result, view=stats)


def render_text(result: Result, args: argparse.Namespace) -> None:
    from engine.cli.output import say

    stats, result = result.view, result.data
    root, files, sections, tokens = result["root"], result["indexed"], result["sections"], result["tokens"]
    say(f"{root}: {files:,} files ({sections:,} sections, {tokens:,} tokens) indexed in {stats.location}")
    say(f"{stats.changed:,} read, {stats.removed:,} removed ({stats.bytes_read:,} bytes) in {stats.seconds:.2f} s"
        + ("; rebuilt" if stats.rebuilt else ""))
    for entry in result["skipped"]:
        say(f"skipped {entry['path']}: {entry['reason']}")
