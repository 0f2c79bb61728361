"""``studio9 jobs …`` and ``studio9 files …``: the command line as a client of the HTTP API."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from studio9.config.settings import Settings
from studio9.errors import ConfigError

#: The shell's code for "stopped by Ctrl-C" (128 + SIGINT).
EXIT_INTERRUPTED = 130
WATCH_EPILOGUE = (
    " Ends with one line saying how the job ended; exit code 0 when it completed, 1 when it"
    " failed or was cancelled, 130 on Ctrl-C (which stops watching, not the job)."
)


def add_commands(commands: Any, common: list[argparse.ArgumentParser]) -> None:
    """Add ``jobs`` and ``files`` to ``commands``; ``common`` holds the flags every command takes."""
    jobs = commands.add_parser(
        "jobs",
        help="submit, list, show, cancel and watch jobs (via the API)",
        description="Talk to the server at STUDIO9_API_URL with STUDIO9_TOKEN.",
    )
    # A client's output is for people: quiet logging unless -v (see studio9.cli).
    jobs.set_defaults(client=True)
    job_commands = jobs.add_subparsers(title="job commands", metavar="JOB_COMMAND", required=True)
    submit = job_commands.add_parser(
        "submit",
        parents=common,
        help="submit a job and print it as JSON",
        description="Submit a job. Params: --param k=v (v parsed as JSON when it "
        "is JSON, else a string) and/or --params-file F (a JSON object).",
    )
    submit.add_argument("type", help="job type, e.g. system.noop (see `studio9 jobs types`)")
    submit.add_argument("--param", action="append", default=[], metavar="K=V", help="one parameter")
    submit.add_argument("--params-file", type=Path, help="a JSON file with the params object")
    submit.add_argument("--priority", type=int, default=0)
    submit.add_argument("--max-attempts", type=int)
    submit.add_argument("--watch", action="store_true", help="then watch it until it ends (see `jobs watch`)")
    submit.set_defaults(run=_submit)
    listing = job_commands.add_parser(
        "list", parents=common, help="list jobs, newest first", description="List jobs."
    )
    listing.add_argument("--type")
    listing.add_argument(
        "--status", choices=["submitted", "queued", "running", "completed", "failed", "cancelled"]
    )
    listing.add_argument("--query", "-q", help="full-text search")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(run=_list)
    for name, helptext, more, run in (
        ("show", "print one job as JSON", "", _show),
        ("cancel", "cancel a job", "", _cancel),
        ("watch", "follow a job's progress until it ends", WATCH_EPILOGUE, _watch),
    ):
        command = job_commands.add_parser(
            name, parents=common, help=helptext, description=helptext.capitalize() + "." + more
        )
        command.add_argument("id", help="job id")
        command.set_defaults(run=run)
    types = job_commands.add_parser(
        "types", parents=common, help="list job types", description="List job types."
    )
    types.set_defaults(run=_types)

    files = commands.add_parser("files", help="upload files (via the API)", description="Upload files.")
    files.set_defaults(client=True)
    file_commands = files.add_subparsers(title="file commands", metavar="FILE_COMMAND", required=True)
    upload = file_commands.add_parser(
        "upload",
        parents=common,
        help="upload a file and print its record",
        description="Stream a local file to the server; prints id, size, sha256.",
    )
    upload.add_argument("path", type=Path)
    upload.set_defaults(run=_upload)


def _client(settings: Settings) -> Any:
    from studio9.client import StudioClient

    return StudioClient(settings)


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if args.params_file:
        try:
            loaded = json.loads(args.params_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot read params file {args.params_file}: {exc}", setting="--params-file"
            ) from None
        if not isinstance(loaded, dict):
            raise ConfigError("the params file must hold a JSON object", setting="--params-file")
        params.update(loaded)
    for item in args.param:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected K=V, got {item!r}", setting="--param")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _submit(settings: Settings, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"type": args.type, "params": _params(args), "priority": args.priority}
    if args.max_attempts is not None:
        body["max_attempts"] = args.max_attempts
    with _client(settings) as client:
        job = client.request("POST", "/jobs", json=body)
        if not args.watch:
            _print(job)
            return 0
        print(job["id"], flush=True)
        return follow_job(client, job["id"], settings)


def _list(settings: Settings, args: argparse.Namespace) -> int:
    query = {
        k: v
        for k, v in {"type": args.type, "status": args.status, "q": args.query, "limit": args.limit}.items()
        if v is not None
    }
    with _client(settings) as client:
        page = client.request("GET", "/jobs", params=query)
    for job in page["items"]:
        print(
            f"{job['id']}  {job['status']:<10} {job['progress'] * 100:5.1f}%  {job['type']:<20} "
            f"{job['submitted_at']}"
        )
    return 0


def _show(settings: Settings, args: argparse.Namespace) -> int:
    with _client(settings) as client:
        _print(client.request("GET", f"/jobs/{args.id}"))
    return 0


def _cancel(settings: Settings, args: argparse.Namespace) -> int:
    with _client(settings) as client:
        job = client.request("DELETE", f"/jobs/{args.id}")
    print(f"{job['id']} {job['status']}{' (stopping)' if job['status'] == 'running' else ''}")
    return 0


def _types(settings: Settings, args: argparse.Namespace) -> int:
    with _client(settings) as client:
        for job_type in client.request("GET", "/job-types")["items"]:
            print(f"{job_type['name']:<20} {job_type['description']}")
    return 0


def _watch(settings: Settings, args: argparse.Namespace) -> int:
    with _client(settings) as client:
        return follow_job(client, args.id, settings)


def follow_job(client: Any, job_id: str, settings: Settings) -> int:
    """Draw the job's progress until it ends, then say how it ended.

    Exit code: 0 completed, 1 failed or cancelled, 130 when the watch (not the job) is
    stopped with Ctrl-C.
    """
    from studio9.cli_progress import final_line, follow

    try:
        follow(lambda: client.request("GET", f"/jobs/{job_id}/status"), interval=settings.heartbeat_interval)
    except KeyboardInterrupt:
        # Watching is not owning: the job goes on, as after closing a browser tab.
        print(
            f"stopped watching; job {job_id} goes on (resume: studio9 jobs watch {job_id}, "
            f"cancel: studio9 jobs cancel {job_id})",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    job = client.request("GET", f"/jobs/{job_id}")
    print(final_line(job), file=sys.stderr)
    return 0 if job["status"] == "completed" else 1


def _upload(settings: Settings, args: argparse.Namespace) -> int:
    if not args.path.is_file():
        raise ConfigError(f"{args.path} is not a file", setting="PATH")
    with _client(settings) as client:
        _print(client.upload(args.path))
    return 0
