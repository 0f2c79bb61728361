"""Application settings: typed, frozen, read once from ``STUDIO9_*`` variables and a TOML file.

Precedence, highest first: environment variables, the TOML file named by
``STUDIO9_CONFIG``, the defaults below. Every field documents itself through its
metadata; the README's configuration table is generated from it
(``studio9.config.reference``) and a test keeps the two in step.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self

import attrs

from studio9.errors import ConfigError
from studio9.urls import redact

ENV_PREFIX = "STUDIO9_"
CONFIG_FILE_VAR = "STUDIO9_CONFIG"
# Variables with the prefix that are not settings but are legitimately present: the
# config-file pointer and the switches the test suite and CI use.
NON_SETTING_VARS = frozenset({CONFIG_FILE_VAR, "STUDIO9_REQUIRE_SERVICES"})
NON_SETTING_PREFIXES = ("STUDIO9_TEST_",)

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "console")


def _setting(default: Any, doc: str, *, shown_default: str | None = None, **kwargs: Any) -> Any:
    """An attrs field carrying its documentation for the generated reference table."""
    return attrs.field(default=default, metadata={"doc": doc, "shown_default": shown_default}, **kwargs)


def _under_data_dir(template: str) -> Any:
    return attrs.Factory(
        lambda self: template.format(data_dir=Path(self.data_dir).absolute()), takes_self=True
    )


def _positive(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ConfigError(f"must be greater than 0, got {value}", setting=env_name(attribute.name))


def _one_of(*choices: str) -> Callable[[Any, attrs.Attribute[Any], str], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in choices:
            raise ConfigError(
                f"must be one of {', '.join(choices)}; got {value!r}", setting=env_name(attribute.name)
            )

    return check


def _port(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 0 <= value <= 65535:
        raise ConfigError(f"must be a TCP port (0-65535), got {value}", setting=env_name(attribute.name))


@attrs.frozen(kw_only=True)
class Settings:
    """Everything Studio9 reads from its environment, once, at start-up."""

    data_dir: Path = _setting(
        Path("./studio9-data"),
        "Directory for the embedded backends (SQLite files, blobs) and the first admin token.",
        shown_default="./studio9-data",
        converter=Path,
    )
    host: str = _setting("127.0.0.1", "Interface the HTTP server binds to.")
    port: int = _setting(8080, "TCP port the HTTP server listens on.", validator=_port)
    database_url: str = _setting(
        _under_data_dir("sqlite+aiosqlite:///{data_dir}/studio9.db"),
        "System of record (SQLAlchemy URL): `sqlite+aiosqlite:///…`, `postgresql+psycopg://…`"
        " or `memory://` (nothing kept; tests and demos).",
        shown_default="sqlite+aiosqlite:///<data dir>/studio9.db",
        repr=redact,
    )
    broker_url: str = _setting(
        "memory://",
        "Job delivery broker: `memory://` (in-process, edge), `amqp://user:pass@host:5672/vhost` (RabbitMQ)"
        " or `sqs://?region=…&namespace=studio9` (Amazon SQS).",
        repr=redact,
    )
    index_url: str = _setting(
        "sql://",
        "Metadata search index: `sql://` (full-text in the system-of-record database),"
        " `opensearch://host:9200/?index=studio9-search` (`opensearch+https://user:pass@…`) or `memory://`.",
        repr=redact,
    )
    blob_url: str = _setting(
        _under_data_dir("file://{data_dir}/blobs"),
        "Blob store for files, job inputs and outputs: `file:///dir`, `s3://bucket/prefix?region=…`"
        " (`endpoint_url=` for MinIO/LocalStack) or `memory://`.",
        shown_default="file://<data dir>/blobs",
        repr=redact,
    )
    blob_redirects: bool = _setting(
        True,
        "Answer downloads from a blob store that can presign (S3) with a 307 redirect to a short-lived URL"
        " instead of streaming them through the API; turn off when clients cannot reach the store.",
        shown_default="true",
    )
    sink_url: str = _setting(
        _under_data_dir("sqlite:///{data_dir}/predictions.db"),
        "Prediction sink: `sqlite:///file.db`, `postgresql://…` (COPY), `redshift://workgroup@region/db?s3_staging=…"
        "&iam_role=…` (S3 staging + COPY via the Data API) or `memory://`.",
        shown_default="sqlite:///<data dir>/predictions.db",
        repr=redact,
    )
    events_url: str = _setting(
        "memory://",
        "Where job and asset events go: `memory://` (in-process), `amqp://…?exchange=studio9.events`"
        " (a RabbitMQ topic exchange) or `sns://topic?region=…` (an SNS topic). Serving processes"
        " also listen there for `config.*` events, to drop changed settings from their caches.",
        repr=redact,
    )
    openlineage_url: str = _setting(
        "",
        "OpenLineage endpoint that `tables.import` and `tables.sql` jobs POST their run events to"
        " (Marquez: `http://host:5000/api/v1/lineage`; DataHub and OpenMetadata accept them too);"
        " the events also go on the event bus, topic `openlineage.run`.",
        shown_default="(none)",
        repr=redact,
    )
    log_level: str = _setting(
        "info",
        "Least severe log level written: " + ", ".join(LOG_LEVELS) + ".",
        validator=_one_of(*LOG_LEVELS),
        converter=str.lower,
    )
    log_format: str = _setting(
        "auto",
        "`json`, `console`, or `auto` (console on a terminal, JSON otherwise).",
        validator=_one_of(*LOG_FORMATS),
        converter=str.lower,
    )
    build: str = _setting("dev", "Build identifier reported by `GET /about` (set by the image build).")
    token_ttl_days: int = _setting(30, "Lifetime of a new API token, in days.", validator=_positive)
    login_max_failures: int = _setting(
        5,
        "Wrong passwords in a row after which a user's logins are refused for a while.",
        validator=_positive,
    )
    login_lockout_seconds: int = _setting(
        300, "How long logins stay refused after too many wrong passwords.", validator=_positive
    )
    max_body_bytes: int = _setting(
        1_048_576,
        "Largest JSON request body accepted, in bytes (uploads have their own limit).",
        validator=_positive,
    )
    backend_timeout: float = _setting(
        5.0, "Seconds to wait for a backend to answer at start-up and in health checks.", validator=_positive
    )
    shutdown_timeout: float = _setting(
        30.0, "Seconds a stopping process waits for requests and jobs in flight.", validator=_positive
    )
    worker_threads: int = _setting(
        4, "Job worker threads (in-process for `serve`, per process for `worker`).", validator=_positive
    )
    heartbeat_interval: float = _setting(
        5.0,
        "Seconds between a running job's heartbeats (they renew its lease and store progress).",
        validator=_positive,
    )
    lease_timeout: float = _setting(
        30.0,
        "Seconds without a heartbeat after which a running job's attempt counts as lost.",
        validator=_positive,
    )
    start_timeout: float = _setting(
        3600.0,
        "Seconds a queued job may wait for a worker before it fails with `start_timeout`.",
        validator=_positive,
    )
    cancel_grace: float = _setting(
        30.0,
        "Seconds a running job has to stop after a cancel before it is marked cancelled anyway.",
        validator=_positive,
    )
    sweep_interval: float = _setting(
        5.0,
        "Seconds between supervisor sweeps (re-sends, timeouts, retries, clean-ups).",
        validator=_positive,
    )
    redeliver_after: float = _setting(
        30.0,
        "Seconds after which a still-queued job's message is sent again (a lost message costs this much).",
        validator=_positive,
    )
    retry_backoff: float = _setting(
        2.0,
        "Seconds before the first retry of a failed attempt; doubles with each attempt (capped at 300).",
        validator=_positive,
    )
    max_lost_attempts: int = _setting(
        3,
        "Times a job whose worker died (its lease expired) is queued again, on top of its type's"
        " `max_attempts` for handler errors; then it fails with `lost`.",
        validator=attrs.validators.ge(0),
    )
    max_upload_bytes: int = _setting(
        1024**3, "Largest file accepted by `POST /api/v1/files`, in bytes.", validator=_positive
    )
    staging_max_age: float = _setting(
        86400.0,
        "Seconds after which an unfinished upload counts as left by a crash and is removed (`file://`:"
        " a `.staging/*.part` not written to for this long; `s3://`: a multipart upload started this long"
        " ago). Keep it above your longest upload (the default fits 1 GiB at 100 kbit/s). Swept at"
        " start-up, then hourly (every half of this when shorter); this process's own uploads are spared.",
        validator=_positive,
    )
    api_url: str = _setting(
        "",
        "Server the `studio9 jobs` and `studio9 files` commands talk to (default: this host and port).",
        shown_default="http://<host>:<port>",
    )
    token: str = _setting(
        "",
        "API token for the `studio9 jobs` and `studio9 files` commands (default: `<data dir>/admin-token`"
        " when readable).",
        shown_default="(none)",
        repr=lambda value: "***" if value else "''",
    )
    model_trusted_types: str = _setting(
        "",
        "Comma-separated Python types (`module.Name`) an imported model file may hold beyond those"
        " Studio9 trusts (scikit-learn's own); a file holding any other type is refused, naming it."
        " Trust a type only if its code is installed here and you trust where the files come from.",
        shown_default="(none)",
    )
    auth_cache_seconds: float = _setting(
        5.0,
        "Seconds a verified token is trusted without asking the database again; bounds how long a"
        " revocation made by another process takes to apply.",
        validator=attrs.validators.ge(0),
    )

    @property
    def trusted_model_types(self) -> frozenset[str]:
        """``model_trusted_types`` as a set of type names."""
        return frozenset(t.strip() for t in self.model_trusted_types.split(",") if t.strip())

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """Read settings from ``env`` (default: ``os.environ``) and the optional TOML file.

        Raises:
            ConfigError: an unknown ``STUDIO9_*`` variable or TOML key, a value of the
                wrong type, or an unreadable config file. The message names the setting.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if config_file := env.get(CONFIG_FILE_VAR):
            values.update(_read_toml(Path(config_file)))
        known = {env_name(f.name): f.name for f in attrs.fields(cls)}
        for var, raw in env.items():
            if (
                not var.startswith(ENV_PREFIX)
                or var in NON_SETTING_VARS
                or var.startswith(NON_SETTING_PREFIXES)
            ):
                continue
            if var not in known:
                hint = difflib.get_close_matches(var, known, n=1)
                suggestion = f"; did you mean {hint[0]}?" if hint else ""
                raise ConfigError(f"unknown setting{suggestion}", setting=var)
            values[known[var]] = raw
        return cls(**{name: _convert(name, raw) for name, raw in values.items()})

    def public(self) -> dict[str, Any]:
        """Every setting as JSON-able values, URL passwords redacted (for logs and /status)."""
        return {
            f.name: redact(str(v)) if isinstance(v, str | Path) else v
            for f, v in ((f, getattr(self, f.name)) for f in attrs.fields(type(self)))
        }


def env_name(field_name: str) -> str:
    """The environment variable that sets ``field_name``."""
    return ENV_PREFIX + field_name.upper()


def _convert(name: str, raw: Any) -> Any:
    field = attrs.fields_dict(Settings)[name]
    target = _FIELD_TYPES.get(str(field.type), str)
    if target is int and not isinstance(raw, bool):
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"expected an integer, got {raw!r}", setting=env_name(name)) from None
    if target is float and not isinstance(raw, bool):
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"expected a number, got {raw!r}", setting=env_name(name)) from None
    if target is bool:
        if isinstance(raw, bool):
            return raw
        lowered = str(raw).strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise ConfigError(f"expected true or false, got {raw!r}", setting=env_name(name))
    if not isinstance(raw, str):
        raise ConfigError(f"expected a string, got {raw!r}", setting=env_name(name))
    return raw


_FIELD_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "Path": str, "bool": bool}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror}", setting=CONFIG_FILE_VAR
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}", setting=CONFIG_FILE_VAR) from None
    names = {f.name for f in attrs.fields(Settings)}
    for key in data:
        if key not in names:
            hint = difflib.get_close_matches(key, names, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(f"unknown key {key!r} in {path}{suggestion}", setting=CONFIG_FILE_VAR)
    return data
