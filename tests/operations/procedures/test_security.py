"""The security audit finds what was planted: a changed artifact, a secret others can read, an open dashboard."""

from __future__ import annotations

from opscore.access.private_files import secrets_dir
from opscore.models import artifacts
from opscore.operations.procedures import get_procedure, no_checkpoint


def _audit(settings):
    return get_procedure("security_audit").run(settings, {}, no_checkpoint)


def _loopback_dashboard(settings) -> None:
    (settings.workspace / ".streamlit").mkdir(exist_ok=True)
    (settings.workspace / ".streamlit" / "config.toml").write_text('[server]\naddress = "127.0.0.1"\n')


def test_a_clean_workspace_has_no_findings(trained):
    _loopback_dashboard(trained)
    result = _audit(trained)
    assert result.findings == []
    assert result.figures["versions_checked"] == 2 and result.figures["checksum_mismatches"] == 0


def test_a_planted_wrong_checksum_is_found_naming_the_version(trained):
    _loopback_dashboard(trained)
    path = artifacts.artifact_path(trained.model_store_path, "v2")
    path.write_bytes(path.read_bytes() + b"\0")
    result = _audit(trained)
    assert [f.severity for f in result.findings] == ["critical"]
    assert "version v2" in result.findings[0].summary and result.findings[0].follow_up == "corrective"
    assert result.figures["checksum_mismatches"] == 1


def test_a_world_readable_token_file_is_found(trained):
    _loopback_dashboard(trained)
    token = secrets_dir(trained) / "admin_token"
    token.write_text("planted")
    token.chmod(0o644)
    result = _audit(trained)
    assert [f.summary for f in result.findings if str(token) in f.summary and "chmod 600" in f.summary]
    assert result.figures["exposed_files"] == [str(token)]


def test_a_dashboard_on_every_interface_and_no_credentials_are_found(trained, monkeypatch):
    from opscore.config import replace

    (trained.workspace / ".streamlit").mkdir()
    (trained.workspace / ".streamlit" / "config.toml").write_text('[server]\naddress = "0.0.0.0"\n')
    bare = replace(trained, admin_token="", operator_password="")
    summaries = " ".join(f.summary for f in _audit(bare).findings)
    assert "listens on 0.0.0.0" in summaries
    assert "no admin token" in summaries and "no operator password" in summaries
