"""The ``studio9`` command: help, version, settings errors (exit 2, one line), users, and the
API client commands (``jobs``, ``files``) against a real ``studio9 serve`` process."""

from __future__ import annotations

import errno
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from studio9 import __version__
from tests.integration.processes import free_port, run_cli, start, stop, studio9_env, wait_http


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


@attrs.frozen
class Server:
    """A ``studio9 serve`` process, and the environment of a client of it."""

    env: dict[str, str]
    url: str
    token: str

    def job(self, job_id: str) -> dict[str, Any]:
        response = httpx.get(
            f"{self.url}/api/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {self.token}"}
        )
        response.raise_for_status()
        job: dict[str, Any] = response.json()
        return job

    def wait_running(self, job_id: str) -> None:
        deadline = time.monotonic() + 60
        while (status := self.job(job_id)["status"]) != "running":
            assert status in ("submitted", "queued") and time.monotonic() < deadline, status
            time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("server") / "data"
    port = free_port()
    # Short heartbeats: a cancel takes effect, and the bar gets news, every half second.
    env = studio9_env(data, STUDIO9_PORT=str(port), STUDIO9_HEARTBEAT_INTERVAL="0.5")
    process = start("serve", env=env, log=data.parent / "serve.log")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", process)
        yield Server(env=env, url=url, token=(data / "admin-token").read_text().strip())
    finally:
        assert stop(process) == 0


def _submit(server: Server, *args: str) -> str:
    submitted = run_cli("jobs", "submit", *args, env=server.env)
    assert submitted.returncode == 0, submitted.stderr
    job_id: str = json.loads(submitted.stdout)["id"]
    return job_id


def _watch(server: Server, job_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "studio9", "jobs", "watch", job_id],
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_jobs_and_files_commands_drive_a_running_server(server: Server, tmp_path: Path) -> None:
    env = server.env
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

    shown = json.loads(run_cli("jobs", "show", job_id, env=env).stdout)
    assert shown["result"]["rows"] == 100
    listed = run_cli("jobs", "list", "--status", "completed", env=env)
    assert job_id in listed.stdout

    sleeper = _submit(server, "system.sleep", "--param", "seconds=30")
    cancelled = run_cli("jobs", "cancel", sleeper, env=env)
    assert cancelled.returncode == 0
    assert sleeper in cancelled.stdout

    bad = run_cli("jobs", "submit", "system.noop", "--param", "nope=1", env=env)
    assert bad.returncode == 1
    assert "422" in bad.stderr and "params.nope" in bad.stderr
    assert "system.sleep" in run_cli("jobs", "types", env=env).stdout


def test_a_watch_is_quiet_and_ends_saying_the_job_completed(server: Server) -> None:
    watched = run_cli(
        "jobs",
        "submit",
        "system.sleep",
        "--param",
        "seconds=2",
        "--param",
        "message=napping",
        "--watch",
        env=server.env,
    )
    assert watched.returncode == 0, watched.stderr
    lines = watched.stderr.splitlines()
    assert "HTTP Request:" not in watched.stderr
    assert not [line for line in lines if line.startswith("{")], "no log line on a client command"
    assert lines[-1].startswith("completed in ") and lines[-1].endswith(" s"), lines
    float(lines[-1].removeprefix("completed in ").removesuffix(" s"))
    # Off a terminal, a line only when the job's state changes: never the same one twice running.
    states = [re.sub(r"  eta \S+", "", line) for line in lines[:-1]]
    assert all(a != b for a, b in itertools.pairwise(states)), lines


def test_verbose_shows_the_requests(server: Server) -> None:
    quiet = run_cli("jobs", "types", env=server.env)
    loud = run_cli("jobs", "types", "-v", env=server.env)
    assert quiet.returncode == loud.returncode == 0
    assert quiet.stderr == ""
    assert "HTTP Request: GET" in loud.stderr and server.token not in loud.stderr


def test_a_watch_of_a_failed_job_exits_1_with_its_error(server: Server) -> None:
    job_id = _submit(server, "data.profile", "--param", "file=no-such-file")
    watched = run_cli("jobs", "watch", job_id, env=server.env)
    assert watched.returncode == 1, watched.stderr
    assert watched.stderr.splitlines()[-1].startswith("failed: not_found: "), watched.stderr
    assert watched.stdout == ""


def test_a_watch_of_a_cancelled_job_exits_1_saying_so(server: Server) -> None:
    job_id = _submit(server, "system.sleep", "--param", "seconds=60")
    server.wait_running(job_id)
    watcher = _watch(server, job_id)
    assert run_cli("jobs", "cancel", job_id, env=server.env).returncode == 0
    _, stderr = watcher.communicate(timeout=60)
    assert watcher.returncode == 1, stderr
    assert stderr.splitlines()[-1] == "cancelled", stderr


def test_ctrl_c_stops_watching_not_the_job(server: Server) -> None:
    job_id = _submit(server, "system.sleep", "--param", "seconds=60")
    server.wait_running(job_id)
    watcher = _watch(server, job_id)
    assert watcher.stderr is not None
    assert watcher.stderr.readline().startswith("running")  # watching, signal handlers in place
    watcher.send_signal(signal.SIGINT)
    _, stderr = watcher.communicate(timeout=60)
    assert watcher.returncode == 130, stderr
    assert f"studio9 jobs watch {job_id}" in stderr and f"studio9 jobs cancel {job_id}" in stderr
    job = server.job(job_id)
    assert job["status"] == "running" and not job["cancel_requested"]
    assert run_cli("jobs", "cancel", job_id, env=server.env).returncode == 0


def test_on_a_terminal_the_bar_only_moves_forward_and_ends_with_the_outcome(server: Server) -> None:
    primary, secondary = os.openpty()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "studio9",
            "jobs",
            "submit",
            "system.sleep",
            "--param",
            "seconds=2",
            "--watch",
        ],
        env={**server.env, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=secondary,
    )
    os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError as exc:
            if exc.errno != errno.EIO:  # EIO: the process is gone and the terminal with it
                raise
            break
        if not chunk:
            break
        output += chunk
    os.close(primary)
    assert process.wait(timeout=60) == 0
    text = output.decode()
    frames = [frame.removesuffix("\x1b[K") for frame in text.split("\r") if frame.startswith("[")]
    percents = [float(frame.split("]")[1].split("%")[0]) for frame in frames]
    assert percents == sorted(percents), percents
    assert all(p < 100 for p, frame in zip(percents, frames, strict=True) if " running" in frame)
    assert frames[-1].split("]")[1].strip().startswith("100.0% completed")
    assert text.splitlines()[-1].strip().startswith("completed in ")


def test_client_errors_are_one_line(server: Server, tmp_path: Path) -> None:
    unknown = run_cli("jobs", "show", "no-such-job", env=server.env)
    assert unknown.returncode == 1
    assert unknown.stderr.splitlines() == ["studio9: error: 404 job 'no-such-job' not found"]

    refused = run_cli("jobs", "list", env={**server.env, "STUDIO9_TOKEN": "s9_hunter2"})
    assert refused.returncode == 2
    assert len(refused.stderr.splitlines()) == 1
    assert refused.stderr.startswith("studio9: error: STUDIO9_TOKEN: the server refused the token")
    assert "hunter2" not in refused.stderr

    garbled = run_cli("jobs", "list", env={**server.env, "STUDIO9_TOKEN": "s9_hunter2\nx"})
    assert garbled.returncode == 2
    assert garbled.stderr.splitlines() == [
        "studio9: error: STUDIO9_TOKEN: the token in STUDIO9_TOKEN is not a Studio9 token "
        "(empty, or holds spaces or control characters)"
    ]

    nobody = f"http://user:hunter2@127.0.0.1:{free_port()}"
    unreachable = run_cli("jobs", "list", env={**server.env, "STUDIO9_API_URL": nobody})
    assert unreachable.returncode == 1
    assert len(unreachable.stderr.splitlines()) == 1
    assert "cannot reach the server at http://user:***@127.0.0.1:" in unreachable.stderr
    assert "connection refused" in unreachable.stderr.lower() and "hunter2" not in unreachable.stderr


@pytest.mark.parametrize("command", [["serve"], ["api"], ["serve", "--port", "{port}"]])
def test_a_port_in_use_exits_2_in_one_line_before_anything_is_written(
    tmp_path: Path, command: list[str]
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = studio9_env(
            tmp_path / "data", STUDIO9_PORT=str(port if "--port" not in command else free_port())
        )
        result = run_cli(*[arg.format(port=port) for arg in command], env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"studio9: error: port {port} on 127.0.0.1 is in use (STUDIO9_PORT / --port)"
    ]
    assert not (tmp_path / "data").exists()
