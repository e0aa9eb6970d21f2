"""Settings resolve defaults < opscore.toml < OPSCORE_* environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from opscore.config import load_settings
from opscore.exceptions import BadInputError


def test_layers_override_in_order(tmp_path: Path):
    (tmp_path / "opscore.toml").write_text('seed = 7\nbatch_max_size = 32\nmodel_store = "/srv/models"\n')
    settings = load_settings(tmp_path, env={"OPSCORE_SEED": "11"})
    assert settings.seed == 11  # environment beats the file
    assert settings.batch_max_size == 32  # the file beats the default
    assert settings.model_store_path == Path("/srv/models")
    assert settings.holdout_fraction == 0.2  # untouched default


def test_default_locations_are_under_the_workspace(tmp_path: Path):
    settings = load_settings(tmp_path, env={})
    assert settings.model_store_path == tmp_path / "model_store"
    assert settings.database_url == f"sqlite:///{tmp_path / 'metrics' / 'opscore.db'}"
    assert load_settings(tmp_path, env={"OPSCORE_DB_URL": "postgresql+psycopg://x/y"}).database_url.startswith("postgresql")


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("seed = [", {}, "not valid TOML"),
        ("no_such_setting = 1", {}, "unknown setting"),
        ("", {"OPSCORE_SEED": "many"}, "cannot read 'many' as int"),
        ("", {"OPSCORE_BATCHING": "perhaps"}, "cannot read 'perhaps' as bool"),
    ],
)
def test_bad_configuration_names_the_setting(tmp_path: Path, toml: str, env: dict, message: str):
    (tmp_path / "opscore.toml").write_text(toml)
    with pytest.raises(BadInputError, match=message):
        load_settings(tmp_path, env=env)


def test_booleans_read_naturally(tmp_path: Path):
    assert load_settings(tmp_path, env={"OPSCORE_BATCHING": "off"}).batching is False
    assert load_settings(tmp_path, env={"OPSCORE_BATCHING": "YES"}).batching is True


def test_secrets_default_to_their_own_folder_beside_the_data(tmp_path: Path):
    assert load_settings(tmp_path, env={}).secrets_path == tmp_path / ".opscore"
