"""Checking JSON values against the Claude Agent SDK's published TypeScript types, with the TypeScript compiler.

The hook payloads Claude Code sends and the output it reads are typed in ``@anthropic-ai/claude-agent-sdk``'s
``sdk.d.ts``. `.ci/run` installs that package and ``typescript`` from npm into ``.ci/node`` (see
``install_hint``); this module writes one ``.ts`` file that assigns each value, as an object literal, to a
variable of its declared type — TypeScript then rejects a missing field, a wrong type, a value outside a
string union and, for object literals, any property the type does not have — and runs ``tsc --noEmit`` once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
SDK_VERSION = "0.3.332"
TYPESCRIPT_VERSION = "5.9.3"
install_hint = "python tests/sdk_types.py install (needs Node.js and the npm registry)"


def node_modules() -> Path | None:
    """The node_modules holding the SDK and TypeScript (``$CTXBUDGET_SDK_NODE_MODULES`` or .ci/node), or None."""
    chosen = os.environ.get("CTXBUDGET_SDK_NODE_MODULES")
    folder = Path(chosen) if chosen else ROOT / ".ci" / "node" / "node_modules"
    needed = [folder / "@anthropic-ai" / "claude-agent-sdk" / "sdk.d.ts", folder / "typescript" / "bin" / "tsc"]
    return folder if shutil.which("node") and all(p.is_file() for p in needed) else None


def typecheck(values: Sequence[tuple[str, Any, bool]], workdir: Path) -> str:
    """Type-check each ``(type name, value, should_fail)``; returns tsc's report ('' when all is as expected).

    A value marked ``should_fail`` carries ``// @ts-expect-error``: if TypeScript accepts it, that is an
    error too — so the check itself is shown to bite."""
    modules = node_modules()
    assert modules is not None, "the SDK's types are not installed: " + install_hint
    names = sorted({t for t, _, _ in values})
    lines = [f"import type {{ {', '.join(names)} }} from \"@anthropic-ai/claude-agent-sdk\";"]
    for n, (type_name, value, should_fail) in enumerate(values):
        if should_fail:
            lines.append("// @ts-expect-error")
        lines.append(f"export const v{n}: {type_name} = {json.dumps(value, ensure_ascii=False)};")
    (workdir / "check.ts").write_text("\n".join(lines) + "\n", encoding="utf-8")
    link = workdir / "node_modules"
    if not link.exists():
        link.symlink_to(modules, target_is_directory=True)
    done = subprocess.run(["node", str(modules / "typescript" / "bin" / "tsc"), "--noEmit", "--strict",
                           "--skipLibCheck", "--module", "nodenext", "--moduleResolution", "nodenext",
                           "--target", "es2022", "check.ts"],
                          cwd=workdir, capture_output=True, text=True, timeout=300)
    return "" if done.returncode == 0 else (done.stdout + done.stderr)


def install(prefix: Path = ROOT / ".ci" / "node") -> int:
    """Install the pinned SDK and TypeScript from npm into ``prefix`` (what .ci/run does); the exit code."""
    prefix.mkdir(parents=True, exist_ok=True)
    command = ["npm", "install", "--prefix", str(prefix), "--no-save", "--omit=optional", "--ignore-scripts",
               "--no-audit", "--no-fund", "--silent", f"typescript@{TYPESCRIPT_VERSION}",
               f"@anthropic-ai/claude-agent-sdk@{SDK_VERSION}"]
    return subprocess.run(command, timeout=600).returncode


if __name__ == "__main__":  # python tests/sdk_types.py install
    import sys

    sys.exit(install() if sys.argv[1:] == ["install"] else 2)
