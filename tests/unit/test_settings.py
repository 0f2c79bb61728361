from __future__ import annotations

from pathlib import Path

import pytest

from studio9.config import Settings
from studio9.errors import ConfigError


def test_defaults_put_every_embedded_backend_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"STUDIO9_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path}/studio9.db"
    assert settings.blob_url == f"file://{tmp_path}/blobs"
    assert settings.sink_url == f"sqlite:///{tmp_path}/predictions.db"
    assert settings.broker_url == "memory://"
    assert settings.index_url == "sql://"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)


def test_environment_values_are_converted_to_their_types() -> None:
    settings = Settings.from_env(
        {"STUDIO9_PORT": "9000", "STUDIO9_BACKEND_TIMEOUT": "2.5", "STUDIO9_LOG_LEVEL": "DEBUG"}
    )
    assert settings.port == 9000
    assert settings.backend_timeout == 2.5
    assert settings.log_level == "debug"


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "setting", "fragment"),
    [
        ({"STUDIO9_PROT": "80"}, "STUDIO9_PROT", "did you mean STUDIO9_PORT"),
        ({"STUDIO9_PORT": "eighty"}, "STUDIO9_PORT", "expected an integer"),
        ({"STUDIO9_PORT": "70000"}, "STUDIO9_PORT", "TCP port"),
        ({"STUDIO9_BACKEND_TIMEOUT": "-1"}, "STUDIO9_BACKEND_TIMEOUT", "greater than 0"),
        ({"STUDIO9_LOG_FORMAT": "xml"}, "STUDIO9_LOG_FORMAT", "must be one of"),
        ({"STUDIO9_TOKEN_TTL_DAYS": "0"}, "STUDIO9_TOKEN_TTL_DAYS", "greater than 0"),
    ],
)
def test_bad_environment_raises_config_error_naming_the_setting(
    env: dict[str, str], setting: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert info.value.setting == setting
    assert str(info.value).startswith(f"{setting}: ")
    assert fragment in str(info.value)


def test_test_and_ci_switches_are_not_mistaken_for_settings() -> None:
    Settings.from_env({"STUDIO9_REQUIRE_SERVICES": "1", "STUDIO9_TEST_POSTGRES_URL": "postgresql://x/y"})


def test_toml_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "studio9.toml"
    config.write_text('port = 9100\nhost = "0.0.0.0"\nbackend_timeout = 1.5\n')
    settings = Settings.from_env({"STUDIO9_CONFIG": str(config), "STUDIO9_PORT": "9200"})
    assert settings.port == 9200
    assert settings.host == "0.0.0.0"
    assert settings.backend_timeout == 1.5


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("prot = 1\n", "unknown key 'prot'"), ("port = [\n", "not valid TOML"), ('port = "x"\n', "integer")],
)
def test_bad_toml_file_raises_config_error(tmp_path: Path, content: str, fragment: str) -> None:
    config = tmp_path / "studio9.toml"
    config.write_text(content)
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"STUDIO9_CONFIG": str(config)})
    assert fragment in str(info.value)


def test_missing_toml_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="STUDIO9_CONFIG: cannot read config file"):
        Settings.from_env({"STUDIO9_CONFIG": str(tmp_path / "absent.toml")})


def test_repr_and_public_view_redact_url_passwords() -> None:
    settings = Settings.from_env(
        {
            "STUDIO9_DATABASE_URL": "postgresql+psycopg://app:hunter2@db:5432/studio9",
            "STUDIO9_BROKER_URL": "amqp://guest:rabbit-secret@mq:5672/",
        }
    )
    for text in (repr(settings), str(settings.public())):
        assert "hunter2" not in text
        assert "rabbit-secret" not in text
        assert "app:***@db:5432" in text
    assert settings.database_url.endswith("app:hunter2@db:5432/studio9")  # the driver still gets it
