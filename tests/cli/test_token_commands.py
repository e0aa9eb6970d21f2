"""``opscore tokens``: add prints a token once, list never shows values, revoke takes effect at once."""

from __future__ import annotations

import json

from opscore.access import tokens
from opscore.cli import main as cli


def test_add_list_revoke(workspace, capsys):
    assert cli.main(["tokens", "add", "labeller", "--scope", "feedback"]) == 0
    out = capsys.readouterr()
    value = out.out.strip()
    assert len(value) >= 32 and "shown once" in out.err
    book = tokens.TokenBook(workspace)
    assert book.authorize(value, "feedback").name == "labeller"

    assert cli.main(["tokens", "list"]) == 0
    listed = capsys.readouterr().out
    assert "labeller" in listed and "feedback" in listed and "env" in listed and value not in listed
    assert cli.main(["tokens", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["scopes"]) for r in rows] == [("env", ["admin"]), ("labeller", ["feedback"])]
    assert rows[1]["created_by"].startswith("cli:")

    assert cli.main(["tokens", "revoke", "labeller"]) == 0
    assert "refuses it from its next request" in capsys.readouterr().out
    assert [t.name for t in tokens.list_tokens(workspace)] == ["env"]


def test_bad_token_commands_exit_2_with_a_reason(workspace, capsys):
    assert cli.main(["tokens", "add", "no spaces", "--scope", "admin"]) == 2
    assert "letters, digits" in capsys.readouterr().err
    assert cli.main(["tokens", "add", "env", "--scope", "admin"]) == 2
    assert "reserved" in capsys.readouterr().err
    assert cli.main(["tokens", "revoke", "nobody"]) == 2
    assert "no token named 'nobody'" in capsys.readouterr().err
    assert cli.main(["tokens", "revoke", "env"]) == 2
    assert "OPSCORE_ADMIN_TOKEN" in capsys.readouterr().err
