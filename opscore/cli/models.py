"""Commands over the registry: ``train``, ``retrain``, ``register``, ``versions``, ``promote``, ``rollback``, ``ledger``."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from opscore.access.actors import Actor
from opscore.config import Settings
from opscore.exceptions import OpscoreError
from opscore.views.formatting import text_table, when


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the ensemble and register a version")
    p.add_argument("--version-id", required=True)
    p.add_argument("--data", help="training CSV (default: the bundled demo data set)")
    p.add_argument("--target", help="column to predict (required with --data)")
    p.add_argument("--task", choices=["classification", "regression"])
    p.add_argument("--notes", help="free text kept with the version")
    p.add_argument("--candidate", action="store_true",
                   help="register as the candidate instead of promoting to production")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("retrain", help="train a candidate from a version's training data (never promotes it)")
    p.add_argument("--from", dest="base", metavar="VERSION", help="whose training data to start from (default: production)")
    p.add_argument("--version-id", help="id of the new candidate (default: the next in the naming scheme)")
    p.add_argument("--data", help="CSV of more labelled rows to add (same columns and target)")
    p.add_argument("--labelled-traffic", action="store_true",
                   help="add the newest labelled production traffic (labels sent to /feedback)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=cmd_retrain)

    p = sub.add_parser("register", help="register a scikit-learn model trained elsewhere (.skops, .joblib, MLflow dir)")
    p.add_argument("--version-id", required=True)
    p.add_argument("--model", required=True,
                   help="a .skops file, a .joblib/.pkl file (needs --trust-pickle) or an MLflow model directory")
    p.add_argument("--data", required=True, help="CSV: a labelled sample the model did not train on")
    p.add_argument("--target", required=True, help="the label column in --data")
    p.add_argument("--task", choices=["classification", "regression"])
    p.add_argument("--trust", nargs="+", action="extend", default=[], metavar="TYPE",
                   help="a type outside scikit-learn, numpy and scipy that the .skops file may build")
    p.add_argument("--trust-pickle", action="store_true",
                   help="open a joblib/pickle model (it can run code when loaded: only for files you trust)")
    p.add_argument("--notes", help="free text kept with the version")
    p.add_argument("--candidate", action="store_true",
                   help="register as the candidate instead of promoting to production")
    p.set_defaults(run=cmd_register)

    p = sub.add_parser("versions", help="version history with aliases and metrics")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_versions)

    expect = ("the version you mean to replace: refused (exit 2) if production is something else by then, "
              "so a move someone made meanwhile is never overridden")
    p = sub.add_parser("promote", help="move production to a version (pre-flight checked, ledgered)")
    p.add_argument("version_id")
    p.add_argument("--reason", required=True)
    p.add_argument("--expect", metavar="VERSION", help=expect)
    p.set_defaults(run=cmd_promote)

    p = sub.add_parser("rollback", help="move production back (pre-flight checked, ledgered)")
    p.add_argument("--to", help="version to roll back to (default: the one that served before)")
    p.add_argument("--reason", required=True)
    p.add_argument("--expect", metavar="VERSION", help=expect)
    p.set_defaults(run=cmd_rollback)

    p = sub.add_parser("ledger", help="every alias move: who, when, from, to, why")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int)
    p.set_defaults(run=cmd_ledger)


def cli_actor() -> Actor:
    """Whoever can run the CLI on the workspace is its operator."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return Actor(user, "operator", "cli")


@contextmanager
def training_progress(quiet: bool) -> Iterator[Callable[[str, float], None]]:
    """A progress bar on a terminal, one ``stage:`` line per stage otherwise, nothing with ``--quiet``."""
    from tqdm import tqdm

    interactive = sys.stderr.isatty() and not quiet
    bar = tqdm(total=100, desc="training", file=sys.stderr, disable=not interactive,
               bar_format="{desc:<20} {percentage:3.0f}%|{bar}| {elapsed}")

    def progress(stage: str, fraction: float) -> None:
        bar.set_description(stage)
        bar.update(round(fraction * 100) - bar.n)
        if not interactive and not quiet:
            print(f"stage: {stage}", file=sys.stderr, flush=True)

    try:
        yield progress
    finally:
        bar.close()


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.data.datasets import read_csv_path
    from opscore.demo.credit_data import TARGET, credit_applications
    from opscore.models.training import train_version

    if args.data:
        if not args.target:
            raise OpscoreError("--data needs --target naming the column to predict")
        frame, target = read_csv_path(Path(args.data)), args.target
    else:
        frame, target = credit_applications(seed=settings.seed), args.target or TARGET
    with training_progress(args.quiet) as progress:
        outcome = train_version(settings, args.version_id, frame, target, task=args.task, actor=cli_actor(),
                                created_by="cli", notes=args.notes or "",
                                then="candidate" if args.candidate else "promote", progress=progress)
    version = outcome.version
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"registered {version.version_id} ({version.task}, {version.training_rows} rows, {version.train_seconds:.1f} s)")
    for name, value in version.metrics.items():
        print(f"  {name:<10} {value:.4f}")
    if outcome.promoted:
        print(f"{version.version_id} is production")
    elif "candidate" in version.aliases:
        print(f"{version.version_id} is the candidate; promote it with: opscore promote {version.version_id} --reason ...")
    return 0


def cmd_retrain(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.data.datasets import read_csv_path
    from opscore.models.retraining import retrain

    extra = read_csv_path(Path(args.data)) if args.data else None
    with training_progress(args.quiet) as progress:
        outcome = retrain(settings, args.base, extra, args.labelled_traffic, actor=cli_actor(),
                          version_id=args.version_id, progress=progress)
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
    trained_on = ", ".join(f"{n:,} {what}" for what, n in outcome.sources.items())
    print(f"registered candidate {outcome.candidate.version_id} from {trained_on} ({outcome.seconds:.1f} s)")
    print(outcome.comparison().to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print(f"promote it with: opscore promote {outcome.candidate.version_id} --reason ...")
    return 0


def cmd_register(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.data.datasets import read_csv_path
    from opscore.models.registration import register_model

    frame = read_csv_path(Path(args.data))
    outcome = register_model(settings, args.version_id, Path(args.model), frame, args.target, actor=cli_actor(),
                             task=args.task, trust=args.trust, trust_pickle=args.trust_pickle, created_by="cli",
                             notes=args.notes or "", then="candidate" if args.candidate else "promote")
    version = outcome.version
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"registered {version.version_id} ({version.task}, {version.params['estimator']}, "
          f"evaluated on {version.training_rows} rows)")
    for name, value in version.metrics.items():
        print(f"  {name:<10} {value:.4f}")
    if outcome.promoted:
        print(f"{version.version_id} is production")
    elif "candidate" in version.aliases:
        print(f"{version.version_id} is the candidate; promote it with: opscore promote {version.version_id} --reason ...")
    return 0


def cmd_versions(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.models.registry import list_versions
    from opscore.store import open_store

    found = list_versions(open_store(settings))
    if args.json:
        print(json.dumps([v.to_dict() for v in found], indent=1))
        return 0
    if not found:
        print("no versions yet: opscore train --version-id v1")
        return 0
    rows = []
    for v in found:
        headline = ", ".join(f"{k}={x:.3f}" for k, x in list(v.metrics.items())[:3])
        rows.append([v.version_id, when(v.created_at), v.created_by, v.task, headline, ",".join(v.aliases)])
    print(text_table(rows, ["version", "created", "by", "task", "holdout metrics", "aliases"]))
    return 0


def cmd_promote(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.models.registry import promote

    entry = promote(settings, args.version_id, cli_actor(), args.reason, expected_from=args.expect)
    print(f"production: {entry.from_version or '(none)'} -> {entry.to_version} (ledger #{entry.id})")
    return 0


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.models.registry import rollback

    entry = rollback(settings, cli_actor(), args.reason, to=args.to, expected_from=args.expect)
    print(f"rolled back production: {entry.from_version} -> {entry.to_version} (ledger #{entry.id})")
    return 0


def cmd_ledger(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.models.registry import ledger_entries
    from opscore.store import open_store

    entries = ledger_entries(open_store(settings), limit=args.limit)
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=1))
        return 0
    if not entries:
        print("the ledger is empty: no alias has moved yet")
        return 0
    rows = [[str(e.id), when(e.at), e.alias, e.action, e.from_version or "-", e.to_version or "-", e.actor, e.reason]
            for e in entries]
    print(text_table(rows, ["#", "time", "alias", "action", "from", "to", "actor", "reason"]))
    return 0
