"""API tokens for the HTTP service: ``opscore tokens add|list|revoke``.

A running service picks every change up at its next request; no restart.
"""

from __future__ import annotations

import argparse
import json
import sys

from opscore.cli.models import cli_actor
from opscore.config import Settings
from opscore.views.formatting import text_table, when


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tokens", help="API tokens for mutating HTTP routes: add, list, revoke")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    a = actions.add_parser("add", help="add a named token; prints its value once (only its hash is kept)")
    a.add_argument("name", help="who or what uses it, e.g. labeller or ci-deploy (kept in the ledger)")
    a.add_argument("--scope", choices=["feedback", "admin"], required=True,
                   help="feedback: POST /feedback only; admin: every mutating route")
    a.set_defaults(run=cmd_add)

    a = actions.add_parser("list", help="the tokens the service accepts: name, scopes, where configured")
    a.add_argument("--json", action="store_true")
    a.set_defaults(run=cmd_list)

    a = actions.add_parser("revoke", help="remove a token; a running service refuses it from its next request")
    a.add_argument("name")
    a.set_defaults(run=cmd_revoke)


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.access.tokens import add_token

    value = add_token(settings, cli_actor(), args.name, args.scope)
    print(f"opscore: added token {args.name!r} ({args.scope}); it is shown once, keep it now:", file=sys.stderr)
    print(value)
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.access.tokens import list_tokens

    found = list_tokens(settings)
    if args.json:
        print(json.dumps([t.to_dict() for t in found], indent=1))
        return 0
    if not found:
        print("no tokens yet: opscore serve generates an admin token; add more with opscore tokens add NAME --scope ...")
        return 0
    rows = [[t.name, ",".join(t.scopes), when(t.created_at) if t.created_at else "-", t.created_by or "-", t.source]
            for t in found]
    print(text_table(rows, ["name", "scopes", "added", "by", "configured in"]))
    return 0


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from opscore.access.tokens import revoke_token

    revoke_token(settings, cli_actor(), args.name)
    print(f"revoked {args.name!r}: the service refuses it from its next request")
    return 0
