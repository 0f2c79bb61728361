"""``studio9 train``, ``studio9 models`` and ``studio9 predict`` against a real ``studio9 serve``:
a table imported, a model trained with --watch (name, version, hold-out metrics), listed, shown,
promoted, used by a --watch prediction whose scored table has every row, and each mistake a user
makes (a bad flag, an unknown column, alias or model, deleting an aliased model) ending in one
line on standard error with a non-zero exit."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Iterator

import pytest

from tests.integration.processes import free_port, run_cli, start, stop, studio9_env, wait_http
from tests.integration.test_cli import Server

ROWS = 150
TRAIN = ("--target", "species", "--algorithms", "random_forest", "--search", "none", "--seed", "7")


def _flowers() -> str:
    """Two numeric features, one text feature and a three-class target."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["petal", "sepal", "colour", "species"])
    for i in range(ROWS):
        writer.writerow(
            [
                round(1.0 + (i % 3) * 2.0 + (i % 7) * 0.11, 2),
                round(3.0 + (i % 5) * 0.3 + (i % 3) * 0.5, 2),
                ("pale", "deep", "dark")[(i // 3 + i % 3) % 3],
                ("setosa", "versicolor", "virginica")[i % 3],
            ]
        )
    return out.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("server") / "data"
    port = free_port()
    env = studio9_env(data, STUDIO9_PORT=str(port), STUDIO9_HEARTBEAT_INTERVAL="0.5")
    process = start("serve", env=env, log=data.parent / "serve.log")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", process)
        yield Server(env=env, url=url, token=(data / "admin-token").read_text().strip())
    finally:
        assert stop(process) == 0


@pytest.fixture(scope="module")
def flowers(server: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The id of a table ``flowers``, imported the way a user would."""
    path = tmp_path_factory.mktemp("files") / "flowers.csv"
    path.write_text(_flowers())
    imported = run_cli("tables", "import", str(path), "--name", "flowers", "--watch", env=server.env)
    assert imported.returncode == 0, imported.stderr
    return imported.stdout.strip()


def _one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """A refusal: a non-zero exit, nothing on standard output, one line naming ``words``."""
    assert result.returncode != 0, result
    assert result.stdout == "", result
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("studio9: error: "), result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_train_show_promote_predict_and_delete(server: Server, flowers: str) -> None:
    trained = run_cli("train", flowers, *TRAIN, "--watch", env=server.env)
    assert trained.returncode == 0, trained.stderr
    job_id, headline, holdout = trained.stdout.splitlines()
    assert server.job(job_id)["status"] == "completed"
    assert trained.stderr.splitlines()[-1].startswith("completed in "), trained.stderr
    assert headline.split() == ["flowers-species", "v1", "random_forest", "multiclass"]
    split, *metrics = holdout.split()
    values = dict(m.split("=") for m in metrics)
    assert split == "holdout" and {"accuracy", "f1_macro"} <= set(values), holdout
    assert 0.0 <= float(values["accuracy"]) <= 1.0

    # Without --watch: the job id alone; --json: the job, with the params the flags made.
    submitted = run_cli(
        "train", flowers, "--target", "species", "--algorithms", "linear", "--search", "none",
        "--holdout", "0.3", "--model", "flowers-linear", "--json", env=server.env,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)
    assert job["type"] == "ml.train"
    params = job["params"]  # the server fills in every default
    assert (params["table"], params["target"], params["algorithms"]) == (flowers, "species", ["linear"])
    assert (params["search"]["method"], params["validation"]["holdout_fraction"]) == ("none", 0.3)
    assert (params["model_name"], params["features"], params["seed"]) == ("flowers-linear", None, 0)
    assert run_cli("jobs", "watch", job["id"], env=server.env).returncode == 0

    listed = run_cli("models", "list", env=server.env)
    assert listed.returncode == 0, listed.stderr
    assert sorted(line.split()[1:3] for line in listed.stdout.splitlines()) == [
        ["v1", "flowers-linear"],
        ["v1", "flowers-species"],
    ]

    promoted = run_cli("models", "promote", "flowers-species", "1", "--alias", "champion", env=server.env)
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stdout.split() == ["flowers-species", "@champion", "->", "v1"]

    shown = run_cli("models", "show", "flowers-species", env=server.env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[1] == "versions:" and lines[2].split()[0] == "v1" and lines[2].endswith("@champion")
    assert lines[3].split() == ["version", "1:", "random_forest", "multiclass", "target", "species"]
    assert lines[4] == "metrics:" and lines[5].split()[0] == "holdout"
    schema = lines[lines.index("input schema:") + 1 :]
    assert [line.split()[0] for line in schema] == ["petal", "sepal", "colour"]
    as_json = json.loads(
        run_cli("models", "show", "flowers-species", "--version", "1", "--json", env=server.env).stdout
    )
    assert as_json["model"]["aliases"] == {"champion": 1}
    assert as_json["version"]["classes"] == ["setosa", "versicolor", "virginica"]

    predicted = run_cli("predict", "flowers-species@champion", flowers, "--watch", env=server.env)
    assert predicted.returncode == 0, predicted.stderr
    job_line, scored_line = predicted.stdout.splitlines()
    scored, count, unit = scored_line.split()
    assert (count, unit) == (str(ROWS), "rows")
    assert server.job(job_line)["result"]["table"] == scored
    table = json.loads(run_cli("tables", "show", scored, env=server.env).stdout)
    assert table["row_count"] == ROWS
    assert {"prediction", "probability_setosa"} <= {c["name"] for c in table["columns"]}

    # An alias keeps the model; without it, the model goes.
    _one_line_error(run_cli("models", "delete", "flowers-species", env=server.env), "409", "champion")
    deleted = run_cli("models", "delete", "flowers-linear", env=server.env)
    assert (deleted.returncode, deleted.stdout, deleted.stderr) == (0, "", "")
    _one_line_error(run_cli("models", "show", "flowers-linear", env=server.env), "404", "flowers-linear")


def test_what_a_user_gets_wrong_is_one_line(server: Server, flowers: str) -> None:
    # Refused before anything is sent, naming the flag (exit 2, as every bad setting).
    folds = run_cli("train", flowers, "--target", "species", "--folds", "1", env=server.env)
    _one_line_error(folds, "--folds", "cv_folds")
    assert folds.returncode == 2
    _one_line_error(
        run_cli("train", flowers, "--target", "species", "--algorithms", "svm", env=server.env), "svm"
    )
    _one_line_error(run_cli("predict", "flowers-species@", flowers, env=server.env), "MODEL")
    _one_line_error(
        run_cli("models", "promote", "flowers-species", "1", "--alias", "a b", env=server.env), "--alias"
    )

    # Refused by the job: --watch prints its id, then ends with the job's error, exit 1.
    missing = run_cli("train", flowers, "--target", "colur", "--watch", env=server.env)
    assert missing.returncode == 1, missing.stderr
    assert server.job(missing.stdout.strip())["status"] == "failed"
    last = missing.stderr.splitlines()[-1]
    assert last.startswith("failed: ") and "colur" in last, missing.stderr
    for args, named in (
        (("predict", "no-such-model@champion", flowers), "'no-such-model'"),
        (("train", "no-such-table", "--target", "y"), "'no-such-table'"),
    ):
        failed = run_cli(*args, "--watch", env=server.env)
        assert failed.returncode == 1, failed.stderr
        assert named in failed.stderr.splitlines()[-1], failed.stderr

    # Refused by the server: its one line, exit 1.
    _one_line_error(run_cli("models", "show", "nobody", env=server.env), "404", "nobody")
