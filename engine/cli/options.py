"""Options several commands share, and loading the policy they name."""

from __future__ import annotations

import argparse


def add_policy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", metavar="PATH",
                        help="policy file (default: $CTXBUDGET_POLICY, else ./ctxbudget.yaml, else the bundled "
                             "default); 'default' names the bundled one")


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


def policy_from(args: argparse.Namespace):
    """The compiled policy ``args.policy`` names (raises PolicyError / UsageError for the CLI to report)."""
    from engine.policy import load_policy

    return load_policy(getattr(args, "policy", None))
