"""``studio9 train``, ``studio9 models …`` and ``studio9 predict``: machine learning through the HTTP API.

``train TABLE --target y`` submits an ``ml.train`` job and prints its id; ``--watch`` follows it
with the progress bar and then prints the model's name and version and its hold-out metrics.
``predict MODEL TABLE`` submits an ``ml.predict`` job (``MODEL``: ``name@alias``, ``name/3``,
``owner/name@alias``); ``--watch`` then prints the scored table's id and row count.
``models`` lists, shows, promotes (points an alias at a version) and deletes models.

A bad flag value is refused before anything is sent, in one line naming the flag (exit 2), with
the same checks the job would make (``studio9.ml.engine.spec`` and ``studio9.ml.domain``, which
load nothing heavy). A job that fails ends ``--watch`` with its error on one line and exit 1;
the server's refusals are the client's one line (``studio9.client``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Final
from urllib.parse import quote

from studio9.cli_client import follow_job
from studio9.config.settings import Settings
from studio9.errors import ConfigError, InvalidInput

#: Which flag sets each field of the training spec: a refused value names the flag the user typed.
_FLAGS: Final = {
    "target": "--target",
    "features": "--features",
    "task": "--task",
    "algorithms": "--algorithms",
    "method": "--search",
    "n_candidates": "--candidates",
    "cv_folds": "--folds",
    "time_budget_s": "--time-budget",
    "holdout_fraction": "--holdout",
    "seed": "--seed",
}
#: The order metrics are shown in: the hold-out first, the training rows only when nothing else.
_SPLITS: Final = ("holdout", "out_of_time")


def add_commands(commands: Any, common: list[argparse.ArgumentParser]) -> None:
    """Add ``train``, ``models`` and ``predict`` to ``commands``; ``common`` holds the shared flags."""
    train = commands.add_parser(
        "train",
        parents=common,
        help="train a model on a table (an ml.train job, via the API)",
        description="Submit an ml.train job and print its id. With --watch, follow it, then print "
        "the model's name, version and algorithm and its hold-out metrics: exit 0 when the model "
        "is registered, 1 when the training failed (its last line on standard error says why).",
    )
    train.add_argument("table", metavar="TABLE", help="table id, or owner/name")
    train.add_argument("--target", required=True, help="the column to predict")
    train.add_argument("--features", metavar="A,B", help="the columns to learn from (default: all others)")
    train.add_argument("--task", choices=["auto", "regression", "binary", "multiclass"])
    train.add_argument(
        "--algorithms",
        metavar="A,B",
        help="linear, elastic_net, random_forest, hist_gradient_boosting, extra_trees "
        "(default: linear, random_forest, hist_gradient_boosting)",
    )
    train.add_argument("--search", choices=["random", "halving", "none"], help="default: random")
    train.add_argument("--candidates", type=int, metavar="N", help="parameter sets to try (default: 8)")
    train.add_argument("--folds", type=int, metavar="K", help="cross-validation folds (default: 3)")
    train.add_argument("--time-budget", type=float, metavar="S", help="seconds; keeps the best model so far")
    train.add_argument("--holdout", type=float, metavar="F", help="share of rows held out (default: 0.2)")
    train.add_argument("--seed", type=int, help="default: 0")
    train.add_argument("--model", metavar="NAME", help="the model's name (default: <table name>-<target>)")
    train.add_argument(
        "--experiment",
        metavar="NAME",
        help="the experiment its runs are logged to (default: the model's name)",
    )
    train.add_argument("--watch", action="store_true", help="follow the job until it ends")
    train.add_argument("--json", action="store_true", help="the job (--watch: its result) as JSON")
    train.set_defaults(run=_train, client=True)

    predict = commands.add_parser(
        "predict",
        parents=common,
        help="score a table with a model (an ml.predict job, via the API)",
        description="Submit an ml.predict job and print its id: every row of TABLE with the "
        "model's prediction columns, as a new table. With --watch, follow it, then print the "
        "scored table's id and row count (exit 1 if it failed).",
    )
    predict.add_argument("model", metavar="MODEL", help="name@alias, name/VERSION or owner/name@alias")
    predict.add_argument("table", metavar="TABLE", help="table id, or owner/name")
    predict.add_argument("--key-column", metavar="COLUMN", help="names the rows in the prediction sink")
    predict.add_argument("--watch", action="store_true", help="follow the job until it ends")
    predict.add_argument("--json", action="store_true", help="the job (--watch: its result) as JSON")
    predict.set_defaults(run=_predict, client=True)

    models = commands.add_parser("models", help="list, show, promote and delete models (via the API)")
    models.set_defaults(client=True)
    sub = models.add_subparsers(title="model commands", metavar="MODEL_COMMAND", required=True)
    listing = sub.add_parser("list", parents=common, help="list your models", description="List models.")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_list)
    show = sub.add_parser(
        "show",
        parents=common,
        help="a model's versions and aliases, and a version's metrics and input schema",
        description="Print the model's versions and aliases, then the latest version's (or "
        "--version N's) algorithm, metrics and input schema.",
    )
    show.add_argument("name", metavar="NAME", help="your model's name, or a model id")
    show.add_argument("--version", type=int, metavar="N")
    show.add_argument("--json", action="store_true", help='{"model", "version"} as JSON')
    show.set_defaults(run=_show)
    promote = sub.add_parser(
        "promote",
        parents=common,
        help="point an alias (default: champion) at a version",
        description="Point ALIAS at VERSION of the model, atomically (it leaves the version it pointed at).",
    )
    promote.add_argument("name", metavar="NAME")
    promote.add_argument("version", type=int, metavar="VERSION")
    promote.add_argument("--alias", default="champion", help="default: champion")
    promote.add_argument("--json", action="store_true")
    promote.set_defaults(run=_promote)
    delete = sub.add_parser(
        "delete",
        parents=common,
        help="delete a model (--version: one version)",
        description="Delete the model and every version (its owner only), or --version N. "
        "Refused while an alias points at what would go.",
    )
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("--version", type=int, metavar="N")
    delete.set_defaults(run=_delete)


def _client(settings: Settings) -> Any:
    from studio9.client import StudioClient

    return StudioClient(settings)


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _print_job(job: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        _print(job)
    else:
        print(job["id"])


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


def _model_path(name: str) -> str:
    # A model name may hold spaces or '%': one path segment, whatever it holds.
    return f"/models/{quote(name, safe='')}"


def train_params(args: argparse.Namespace) -> dict[str, Any]:
    """The ``ml.train`` params the flags ask for (only those given: the job has the defaults).

    Raises:
        ConfigError: a value the job would refuse, naming the flag.
    """
    from studio9.ml.engine.spec import SearchSpec, TrainSpec

    search = {
        k: v
        for k, v in (("method", args.search), ("n_candidates", args.candidates), ("cv_folds", args.folds))
        if v is not None
    }
    params: dict[str, Any] = {"table": args.table, "target": args.target}
    optional = {
        "features": _names(args.features),
        "task": args.task,
        "algorithms": _names(args.algorithms),
        "time_budget_s": args.time_budget,
        "seed": args.seed,
        "model_name": args.model,
        "experiment": args.experiment,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    if search:
        params["search"] = search
    if args.holdout is not None:
        params["validation"] = {"holdout_fraction": args.holdout}
    try:
        TrainSpec(
            target=args.target,
            features=params.get("features"),
            task=args.task or "auto",
            algorithms=params.get("algorithms"),
            search=SearchSpec(**search),
            time_budget_s=args.time_budget,
            holdout_fraction=0.2 if args.holdout is None else args.holdout,
            seed=0 if args.seed is None else args.seed,
        )
    except InvalidInput as exc:
        field = exc.details.get("field") or next((f for f in _FLAGS if exc.message.startswith(f)), "")
        raise ConfigError(exc.message, setting=_FLAGS.get(field, "--target")) from None
    return params


def _submitted(settings: Settings, args: argparse.Namespace, job_type: str, params: dict[str, Any]) -> Any:
    """Submit the job; without ``--watch`` print it and answer None; with it, follow it and answer
    its result (an int: the exit code of a job that did not complete)."""
    with _client(settings) as client:
        job = client.request("POST", "/jobs", json={"type": job_type, "params": params})
        if not args.watch:
            _print_job(job, as_json=args.json)
            return None
        print(job["id"], flush=True)
        if follow_job(client, job["id"], settings) != 0:
            return 1
        return client.request("GET", f"/jobs/{job['id']}")["result"]


def _train(settings: Settings, args: argparse.Namespace) -> int:
    result = _submitted(settings, args, "ml.train", train_params(args))
    if result is None or isinstance(result, int):
        return result or 0
    with _client(settings) as client:
        model = client.request("GET", _model_path(result["model"]["id"]))
    if args.json:
        _print({**result, "model": {**result["model"], "name": model["name"]}})
        return 0
    print(f"{model['name']}  v{result['model']['version']}  {result['algorithm']}  {result['task']}")
    for line in metric_lines(result["metrics"]):
        print(line)
    return 0


def metric_lines(metrics: dict[str, Any]) -> list[str]:
    """One line per split, ``holdout  accuracy=0.8640  roc_auc=0.9312``: the hold-out (and
    out-of-time) rows, or the training rows when nothing was held out."""
    splits = [s for s in _SPLITS if metrics.get(s)] or [s for s in metrics if metrics.get(s)]
    width = max((len(s) for s in splits), default=0)
    return [
        f"{split:<{width}}  " + "  ".join(f"{k}={_number(v)}" for k, v in metrics[split].items())
        for split in splits
    ]


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _predict(settings: Settings, args: argparse.Namespace) -> int:
    from studio9.ml.domain import parse_model_ref

    try:
        parse_model_ref(args.model)
    except InvalidInput as exc:
        raise ConfigError(exc.message, setting="MODEL") from None
    params = {"model": args.model, "table": args.table}
    if args.key_column:
        params["key_column"] = args.key_column
    result = _submitted(settings, args, "ml.predict", params)
    if result is None or isinstance(result, int):
        return result or 0
    if args.json:
        _print(result)
    else:
        print(f"{result['table']}  {result['rows']} rows")
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    with _client(settings) as client:
        page = client.request("GET", "/models", params={"limit": args.limit})
    if args.json:
        _print(page["items"])
        return 0
    for model in page["items"]:
        aliases = " ".join(f"@{a}=v{v}" for a, v in sorted(model["aliases"].items()))
        print(
            f"{model['id']}  v{model['latest_version']:<3} {model['name']}"
            + (f"  {aliases}" if aliases else "")
        )
    return 0


def _show(settings: Settings, args: argparse.Namespace) -> int:
    with _client(settings) as client:
        model = client.request("GET", _model_path(args.name))
        latest = max((v["version"] for v in model["versions"]), default=None)
        number = latest if args.version is None else args.version
        version = (
            None if number is None else client.request("GET", f"{_model_path(model['id'])}/versions/{number}")
        )
    if args.json:
        _print({"model": model, "version": version})
        return 0
    for line in show_lines(model, version):
        print(line)
    return 0


def show_lines(model: dict[str, Any], version: dict[str, Any] | None) -> list[str]:
    """The model (versions, aliases) and then one version (algorithm, metrics, input schema)."""
    lines = [f"{model['name']}  {model['id']}", "versions:"]
    for v in model["versions"]:
        aliases = "".join(f"  @{a}" for a in v["aliases"])
        lines.append(f"  v{v['version']:<3} {v['created_at'][:19]}  {v['source']}{aliases}")
    if not model["versions"]:
        lines.append("  (none)")
    if version is None:
        return lines
    lines.append(
        f"version {version['version']}: {version['algorithm'] or '-'}  {version['task']}"
        + (f"  target {version['target']}" if version["target"] else "")
    )
    lines.append("metrics:")
    lines.extend(f"  {line}" for line in metric_lines(version["metrics"]) or ["(none)"])
    lines.append("input schema:")
    width = max((len(c["name"]) for c in version["input_schema"]), default=0)
    for column in version["input_schema"]:
        nullable = "  nullable" if column.get("nullable") else ""
        lines.append(f"  {column['name']:<{width}}  {column['type']}{nullable}")
    return lines


def _promote(settings: Settings, args: argparse.Namespace) -> int:
    from studio9.ml.domain import check_alias

    try:
        check_alias(args.alias)
    except InvalidInput as exc:
        raise ConfigError(exc.message, setting="--alias") from None
    with _client(settings) as client:
        path = f"{_model_path(args.name)}/aliases/{quote(args.alias, safe='')}"
        version = client.request("PUT", path, json={"version": args.version})
    if args.json:
        _print(version)
    else:
        print(f"{version['model']['name']}  @{args.alias} -> v{version['version']}")
    return 0


def _delete(settings: Settings, args: argparse.Namespace) -> int:
    path = _model_path(args.name) + (f"/versions/{args.version}" if args.version is not None else "")
    with _client(settings) as client:
        client.request("DELETE", path)
    return 0
