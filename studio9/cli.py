"""The ``studio9`` command: one entry point for every process kind.

    studio9 serve      edge all-in-one: migrate, API, worker threads, supervisor
    studio9 api        HTTP API only (cloud; run N behind a load balancer)
    studio9 worker     job workers only (cloud; run M of them)
    studio9 migrate    bring the database schema up to date
    studio9 reindex    rebuild the search index from the database
    studio9 jobs       submit, list, show, cancel and watch jobs through the API
    studio9 files      upload files through the API
    studio9 tables     import, list, show, read and export tables through the API
    studio9 sql        preview a read-only SQL query; ``studio9 lineage``: an asset's lineage
    studio9 users      create and list users; prints a new user's token once
    studio9 train      train a model; ``studio9 models``: list, show, promote; ``studio9 predict``

Any problem with the settings, an unreachable backend or a port already in use ends the
process with exit code 2 and one line on standard error naming the setting at fault.
The client commands (``jobs``, ``files``) log nothing below a warning unless asked with
``-v`` (info: one line per HTTP request) or ``-vv`` (debug): their output is for people,
and httpx's line for every request would bury a progress bar.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import os
import signal
import socket
import sys
from collections.abc import Sequence

import attrs
import structlog

from studio9 import __version__
from studio9.config.settings import LOG_LEVELS, Settings
from studio9.errors import ConfigError, Studio9Error

log = structlog.get_logger()

EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_CONFIG
    try:
        settings = _settings(args)
        from studio9.logs import configure_logging

        configure_logging(_log_level(settings, args), settings.log_format)
        result: int = args.run(settings, args)
        return result
    except ConfigError as exc:
        print(f"studio9: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except Studio9Error as exc:
        print(f"studio9: error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _log_level(settings: Settings, args: argparse.Namespace) -> str:
    """STUDIO9_LOG_LEVEL, but at least ``warning`` for client commands; ``-v``/``-vv`` lower it."""
    level = LOG_LEVELS.index(settings.log_level)
    if getattr(args, "client", False):
        level = max(level, LOG_LEVELS.index("warning"))
    verbose = getattr(args, "verbose", 0)
    if verbose:
        level = min(level, LOG_LEVELS.index("debug" if verbose > 1 else "info"))
    return LOG_LEVELS[level]


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    overrides = {k: v for k in ("host", "port") if (v := getattr(args, k, None)) is not None}
    return attrs.evolve(settings, **overrides) if overrides else settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studio9",
        description="Studio9: collaborative data management and ML, on an edge box or in the cloud. "
        "Settings come from STUDIO9_* environment variables (see the README's configuration table).",
    )
    parser.add_argument("--version", action="version", version=f"studio9 {__version__}")
    verbose = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's own -v must not reset a count given before the subcommand.
    verbose.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more log lines: -v info, -vv debug (client commands log only warnings by default)",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log lines (-vv: debug)"
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    common = [verbose]

    serve = commands.add_parser(
        "serve",
        parents=common,
        help="edge all-in-one: migrate, then API + worker threads",
        description="Migrate the database, then run the HTTP API with job worker "
        "threads in this one process. Creates the first admin on an empty database "
        "and writes its token to <data dir>/admin-token.",
    )
    _add_listen_flags(serve)
    serve.set_defaults(run=_run_serve)

    api = commands.add_parser(
        "api",
        parents=common,
        help="HTTP API only (cloud: run several behind a load balancer)",
        description="Run the HTTP API without job workers. Does not migrate: run "
        "`studio9 migrate` once per deployment first.",
    )
    _add_listen_flags(api)
    api.set_defaults(run=_run_api)

    worker = commands.add_parser(
        "worker",
        parents=common,
        help="job workers only (cloud)",
        description="Consume jobs from the shared broker (STUDIO9_BROKER_URL must "
        "not be memory://). Stops gracefully on SIGTERM or SIGINT.",
    )
    worker.set_defaults(run=_run_worker)

    migrate = commands.add_parser(
        "migrate",
        parents=common,
        help="bring the database schema up to date",
        description="Apply the Alembic migrations to STUDIO9_DATABASE_URL.",
    )
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    migrate.add_argument("--downgrade", action="store_true", help="go down to --revision instead of up")
    migrate.set_defaults(run=_run_migrate)

    from studio9.cli_client import add_commands

    add_commands(commands, common)
    from studio9 import cli_tables

    cli_tables.add_commands(commands, common)
    from studio9 import cli_access

    cli_access.add_commands(commands, common)
    from studio9 import cli_ml

    cli_ml.add_commands(commands, common)

    reindex = commands.add_parser(
        "reindex",
        parents=common,
        help="rebuild the search index from the database",
        description="Drop every job and asset document from STUDIO9_INDEX_URL and write "
        "them again from STUDIO9_DATABASE_URL. Safe while the service runs.",
    )
    reindex.set_defaults(run=_run_reindex)

    users = commands.add_parser("users", help="manage users", description="Create and list users.")
    user_commands = users.add_subparsers(title="user commands", metavar="USER_COMMAND", required=True)
    create = user_commands.add_parser(
        "create",
        parents=common,
        help="create a user and print its first token once",
        description="Create a user and print a token for it, once.",
    )
    create.add_argument("name", help="username: a-z, 0-9, '.', '_', '-'")
    role = create.add_mutually_exclusive_group()
    role.add_argument("--admin", action="store_true", help="give the user the admin role")
    role.add_argument("--service", action="store_true", help="a service account (for workers): token only")
    create.add_argument("--password-stdin", action="store_true", help="read a password from standard input")
    create.add_argument("--email", help="the user's email: shares made to it are theirs from the start")
    create.set_defaults(run=_run_users_create)
    listing = user_commands.add_parser(
        "list", parents=common, help="list users", description="List every user."
    )
    listing.set_defaults(run=_run_users_list)
    return parser


def _add_listen_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="interface to bind (default: STUDIO9_HOST)")
    parser.add_argument("--port", type=int, help="port to listen on (default: STUDIO9_PORT)")


# -- commands ------------------------------------------------------------------------------


def _run_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from studio9 import bootstrap

    bootstrap.migrate(settings, revision=args.revision, downgrade=args.downgrade)
    log.info("migrated", revision=args.revision, downgrade=args.downgrade)
    return 0


def _run_serve(settings: Settings, args: argparse.Namespace) -> int:
    # The port first: a second `serve` on a busy port must not migrate, nor write a token.
    sockets = _bind(settings)
    try:
        _run_migrate(settings, argparse.Namespace(revision="head", downgrade=False))
        return _serve_http(settings, sockets, run_workers=True)
    finally:
        for sock in sockets:
            sock.close()


def _run_api(settings: Settings, args: argparse.Namespace) -> int:
    sockets = _bind(settings)
    try:
        return _serve_http(settings, sockets, run_workers=False)
    finally:
        for sock in sockets:
            sock.close()


def _bind(settings: Settings) -> list[socket.socket]:
    """Bind the listening sockets before anything is written, the way uvicorn would.

    uvicorn binds through asyncio's ``create_server``: every address ``getaddrinfo`` gives for
    the host (passive), ``SO_REUSEADDR`` on POSIX, ``IPV6_V6ONLY`` on IPv6. It would do so only
    after the app's start-up (first admin, token file) and exit 1 with a traceback-less
    ``[Errno 98]``; binding here, and handing the sockets over, fails first and without a race.

    Raises:
        ConfigError: the port is in use, or the host cannot be bound.
    """
    host, port = settings.host, settings.port
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve {host!r}: {exc.strerror} (STUDIO9_HOST / --host)") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if os.name == "posix":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is in use (STUDIO9_PORT / --port)") from None
        if exc.errno == errno.EACCES:
            raise ConfigError(f"no permission to listen on port {port} (STUDIO9_PORT / --port)") from None
        raise ConfigError(f"cannot listen on {host}: {exc.strerror} (STUDIO9_HOST / --host)") from None
    return sockets


def _serve_http(settings: Settings, sockets: list[socket.socket], *, run_workers: bool) -> int:
    import uvicorn

    from studio9.api.app import create_app

    asyncio.run(_preflight(settings))
    config = uvicorn.Config(
        create_app(settings, run_workers=run_workers),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_timeout),
        server_header=False,
    )
    # The bound port, which differs from the setting when that is 0 (any free port).
    port = sockets[0].getsockname()[1]
    log.info("http_starting", url=f"http://{settings.host}:{port}", workers_in_process=run_workers)
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the
    # handler that was installed before it. Make that one a no-op, so that a clean stop
    # exits 0 instead of dying by the signal.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _ignore_signal)
    # Everything imported so far lives as long as the process: keep the collector from
    # walking it again and again under load (it showed up as p99 latency spikes).
    gc.collect()
    gc.freeze()
    server.run(sockets=sockets)
    return 0 if server.started else 1


def _ignore_signal(signum: int, frame: object) -> None:
    log.info("http_stopped", signal=signal.Signals(signum).name)


def _run_worker(settings: Settings, args: argparse.Namespace) -> int:
    from studio9.bootstrap import build
    from studio9.processes import running

    asyncio.run(_preflight(settings))

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with build(settings) as container:
            broker = container.broker
            if not broker.shared_between_processes:
                raise ConfigError(
                    "memory:// cannot be shared between processes; use `studio9 serve` (edge) or set "
                    "a shared broker such as amqp://",
                    setting="STUDIO9_BROKER_URL",
                )
            async with running(container, workers=True, loops=True):
                await stop.wait()
                log.info("worker_stopping")

    asyncio.run(run())
    return 0


async def _preflight(settings: Settings) -> None:
    """Open and check every backend once, so a bad setting fails before the server starts."""
    from studio9.bootstrap import build, check_schema

    async with build(settings):
        pass
    check_schema(settings)


def _run_reindex(settings: Settings, args: argparse.Namespace) -> int:
    from studio9.bootstrap import build

    async def run() -> int:
        async with build(settings) as container:
            return await container.indexer.rebuild()

    written = asyncio.run(run())
    print(f"reindexed {written} documents (jobs and assets)")
    return 0


def _run_users_create(settings: Settings, args: argparse.Namespace) -> int:
    from studio9.auth import Role
    from studio9.bootstrap import build

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    role = Role.ADMIN if args.admin else Role.SERVICE if args.service else Role.USER

    async def run() -> str:
        async with build(settings) as container:
            _, token = await container.auth.create_user(
                None, args.name, role=role, password=password, email=args.email
            )
            return token.secret

    secret = asyncio.run(run())
    print(secret)
    return 0


def _run_users_list(settings: Settings, args: argparse.Namespace) -> int:
    from studio9.bootstrap import build

    async def run() -> None:
        async with build(settings) as container:
            after: str | None = None
            while users := await container.auth.users.list(limit=200, after=after):
                for user in users:
                    print(f"{user.id}  {user.role.value:<8} {user.username}")
                after = users[-1].id

    asyncio.run(run())
    return 0
