"""The ``studio9`` command: help, version, settings errors (exit 2, one line), users."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio9 import __version__
from tests.integration.processes import run_cli, studio9_env


def _memory(tmp_path: Path, **more: str) -> dict[str, str]:
    return studio9_env(
        tmp_path / "data",
        STUDIO9_DATABASE_URL="memory://",
        STUDIO9_INDEX_URL="memory://",
        STUDIO9_BLOB_URL="memory://",
        STUDIO9_SINK_URL="memory://",
        **more,
    )


def test_version(tmp_path: Path) -> None:
    result = run_cli("--version", env=studio9_env(tmp_path))
    assert result.returncode == 0
    assert result.stdout.strip() == f"studio9 {__version__}"


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["api"],
        ["worker"],
        ["migrate"],
        ["reindex"],
        ["users"],
        ["users", "create"],
        ["users", "list"],
    ],
)
def test_help_is_useful_for_every_command(tmp_path: Path, command: list[str]) -> None:
    result = run_cli(*command, "--help", env=studio9_env(tmp_path))
    assert result.returncode == 0
    assert "usage: studio9" in result.stdout
    assert len(result.stdout.splitlines()) >= 4


@pytest.mark.parametrize(
    ("settings", "setting", "fragment"),
    [
        ({"STUDIO9_PROT": "8080"}, "STUDIO9_PROT", "unknown setting; did you mean STUDIO9_PORT?"),
        ({"STUDIO9_PORT": "http"}, "STUDIO9_PORT", "expected an integer"),
        ({"STUDIO9_BROKER_URL": "kafka://k:9092"}, "STUDIO9_BROKER_URL", "unknown scheme 'kafka'"),
        (
            {"STUDIO9_DATABASE_URL": "mysql://u:hunter2@h/db"},
            "STUDIO9_DATABASE_URL",
            "unknown scheme 'mysql'",
        ),
        (
            {"STUDIO9_DATABASE_URL": "postgresql://u:hunter2@127.0.0.1:1/db"},
            "STUDIO9_DATABASE_URL",
            "cannot reach",
        ),
        ({"STUDIO9_BROKER_URL": "amqp://guest:hunter2@127.0.0.1:1/"}, "STUDIO9_BROKER_URL", "cannot reach"),
        ({"STUDIO9_INDEX_URL": "sql://"}, "STUDIO9_INDEX_URL", "needs an SQL database"),
        ({"STUDIO9_CONFIG": "/nonexistent/studio9.toml"}, "STUDIO9_CONFIG", "cannot read config file"),
    ],
)
def test_bad_settings_exit_2_with_one_line_naming_the_setting(
    tmp_path: Path, settings: dict[str, str], setting: str, fragment: str
) -> None:
    env = _memory(tmp_path, STUDIO9_BACKEND_TIMEOUT="2")
    env.update(settings)
    result = run_cli("api", env=env)
    assert result.returncode == 2, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("studio9: error:")]
    assert len(error_lines) == 1, result.stderr
    assert error_lines[0].startswith(f"studio9: error: {setting}: ")
    assert fragment in error_lines[0]
    assert "hunter2" not in result.stderr + result.stdout


def test_worker_refuses_the_in_process_broker(tmp_path: Path) -> None:
    result = run_cli("worker", env=_memory(tmp_path))
    assert result.returncode == 2
    assert "studio9: error: STUDIO9_BROKER_URL: memory:// cannot be shared between processes" in result.stderr


def test_users_create_prints_a_token_once_and_list_shows_the_user(tmp_path: Path) -> None:
    env = studio9_env(tmp_path / "data")
    assert run_cli("migrate", env=env).returncode == 0
    created = run_cli(
        "users", "create", "ada", "--admin", "--password-stdin", env=env, stdin="correct horse\n"
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("s9_") and len(token.splitlines()) == 1
    assert token not in created.stderr
    listed = run_cli("users", "list", env=env)
    assert "admin" in listed.stdout and "ada" in listed.stdout
    duplicate = run_cli("users", "create", "ada", env=env)
    assert duplicate.returncode == 1
    assert "username 'ada' is taken" in duplicate.stderr


def test_migrate_then_downgrade(tmp_path: Path) -> None:
    env = studio9_env(tmp_path / "data")
    assert run_cli("migrate", env=env).returncode == 0
    assert run_cli("migrate", "--downgrade", "--revision", "base", env=env).returncode == 0
    assert (tmp_path / "data" / "studio9.db").exists()


def test_a_cloud_scheme_without_its_extra_exits_2_naming_the_dependency(tmp_path: Path) -> None:
    """The edge install has no pika: simulate it by hiding the module from the import system."""
    script = (
        "import sys, importlib.abc\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pika' or name.startswith('pika.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "from studio9.cli import main\n"
        "sys.exit(main(['api']))\n"
    )
    env = _memory(tmp_path, STUDIO9_BROKER_URL="amqp://guest:guest@127.0.0.1:5672/")
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "studio9: error: STUDIO9_BROKER_URL: amqp:// needs the optional dependency 'pika'" in result.stderr


def test_api_on_an_unmigrated_database_exits_2_asking_for_migrate(tmp_path: Path) -> None:
    result = run_cli("api", env=studio9_env(tmp_path / "data"))
    assert result.returncode == 2, result.stderr
    assert "STUDIO9_DATABASE_URL: the database schema is at revision none" in result.stderr
    assert "run `studio9 migrate`" in result.stderr


def test_jobs_and_files_commands_drive_a_running_server(tmp_path: Path) -> None:
    from tests.integration.processes import free_port, start, stop, wait_http

    port = free_port()
    env = studio9_env(tmp_path / "data", STUDIO9_PORT=str(port))
    server = start("serve", env=env, log=tmp_path / "serve.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", server)
        data = tmp_path / "numbers.csv"
        data.write_text("n\n" + "\n".join(str(i) for i in range(100)) + "\n")
        uploaded = run_cli("files", "upload", str(data), env=env)
        assert uploaded.returncode == 0, uploaded.stderr
        file_id = json.loads(uploaded.stdout)["id"]

        params = tmp_path / "params.json"
        params.write_text(json.dumps({"file": file_id}))
        watched = run_cli("jobs", "submit", "data.profile", "--params-file", str(params), "--watch", env=env)
        assert watched.returncode == 0, watched.stderr
        job_id = watched.stdout.strip()
        assert "100.0% completed" in watched.stderr

        shown = json.loads(run_cli("jobs", "show", job_id, env=env).stdout)
        assert shown["result"]["rows"] == 100
        listed = run_cli("jobs", "list", "--status", "completed", env=env)
        assert job_id in listed.stdout

        sleeper = json.loads(
            run_cli("jobs", "submit", "system.sleep", "--param", "seconds=30", env=env).stdout
        )
        cancelled = run_cli("jobs", "cancel", sleeper["id"], env=env)
        assert cancelled.returncode == 0
        assert sleeper["id"] in cancelled.stdout

        bad = run_cli("jobs", "submit", "system.noop", "--param", "nope=1", env=env)
        assert bad.returncode == 1
        assert "422" in bad.stderr and "params.nope" in bad.stderr
        assert "system.sleep" in run_cli("jobs", "types", env=env).stdout
    finally:
        assert stop(server) == 0
