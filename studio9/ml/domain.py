"""The model registry's values: model references, aliases, per-version registry info, its errors.

A registered model is a catalog asset of kind ``model`` and its versions are the asset's versions
(the catalog keeps them, with the fitted model's metadata in their ``content``). The registry
adds what MLflow's registry adds: per-version registry info (description, tags, the run that made
it, a deleted flag) and aliases (``champion``, ``challenger``, any name) that each point at one
version and move atomically.

Users name a model version with a reference (``parse_model_ref``)::

    churn               the latest version of the caller's model "churn"
    churn@champion      the version its alias "champion" points at
    churn/3             version 3
    ada/churn@champion  the same forms for user ada's model (owner = user NAME, as in SQL's ``ada/sales``)

Model names may hold ``@`` (catalog names only forbid ``/``): the LAST ``@`` starts the alias,
and ``name@latest`` names the latest version of such a model explicitly.

Nothing heavy is imported here: the API imports this module at start.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final

import attrs

from studio9.auth.domain import USERNAME_PATTERN
from studio9.catalog.domain import NAME_PATTERN
from studio9.errors import Conflict, InvalidInput, NotFound

MAX_ALIAS_LENGTH: Final = 255
#: The alias that means "the latest version": reserved, as in MLflow.
LATEST: Final = "latest"
#: MLflow's alias rule (letters, digits, ``_``, ``-``; up to 255), minus the reserved ``latest``
#: and ``v<digits>`` (MLflow keeps those for versions), in any case. Read alike by Python
#: (``fullmatch``) and ECMAScript (``^…$``), so the OpenAPI document can use it too.
ALIAS_PATTERN: Final = re.compile(
    rf"(?!(?:[Ll][Aa][Tt][Ee][Ss][Tt]|[Vv][0-9]+)$)[A-Za-z0-9_-]{{1,{MAX_ALIAS_LENGTH}}}"
)
_ALIAS_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_ALIAS_LENGTH}}}")
_VERSION = re.compile(r"[0-9]+")
MAX_VERSION_TAGS: Final = 50
MAX_TAG_KEY_LENGTH: Final = 250
MAX_TAG_VALUE_LENGTH: Final = 5000
MAX_DESCRIPTION_LENGTH: Final = 10_000
#: How a reference may be written, for error messages.
REF_FORMS: Final = "name, name@alias, name/version, owner/name, owner/name@alias or owner/name/version"


class ModelSource(enum.StrEnum):
    """Where a model version came from."""

    TRAINING = "training"  # an ``ml.train`` job
    IMPORT = "import"  # an uploaded skops file
    MLFLOW = "mlflow"  # imported from an MLflow registry


# -- references ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ModelRef:
    """A model version as users name it: by owner (a user name; None: the caller) and name, and
    at most one of ``alias`` and ``version`` (neither: the latest version)."""

    owner: str | None = None
    name: str
    alias: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        head = f"{self.owner}/{self.name}" if self.owner is not None else self.name
        if self.alias is not None:
            return f"{head}@{self.alias}"
        if self.version is not None:
            return f"{head}/{self.version}"
        # Where the plain form would read back otherwise (an '@' in the name, or a name of digits
        # after an owner, which reads as a version), say "latest" explicitly.
        if "@" in self.name or (self.owner is not None and _VERSION.fullmatch(self.name)):
            return f"{head}@{LATEST}"
        return head


class InvalidModelRef(InvalidInput):
    """A model reference that is not one of the accepted forms."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(
            f"model reference {text!r} is not valid ({reason}); write {REF_FORMS}",
            field="model",
            reference=text,
        )


def parse_model_ref(text: str) -> ModelRef:
    """``text`` as a ModelRef; raises InvalidModelRef naming what is wrong and the accepted forms.

    A trailing ``/<digits>`` is a version; otherwise the last ``@`` starts an alias
    (``@latest``: the latest version). A name with its owner is ``owner/name``.
    """
    value = text.strip()
    parts = value.split("/")
    if len(parts) > 3:
        raise InvalidModelRef(text, "too many '/'")
    version: int | None = None
    alias: str | None = None
    if len(parts) >= 2 and _VERSION.fullmatch(parts[-1]):
        version = int(parts.pop())
        if version < 1:
            raise InvalidModelRef(text, "versions start at 1")
    elif len(parts) == 3:
        raise InvalidModelRef(text, f"{parts[-1]!r} is not a version number")
    name = parts[-1]
    if version is None and "@" in name:
        name, _, alias = name.rpartition("@")
        if alias.lower() == LATEST:
            alias = None
        elif not ALIAS_PATTERN.fullmatch(alias):
            raise InvalidModelRef(text, f"alias {alias!r}: {_alias_problem(alias)}")
    owner = parts[0] if len(parts) == 2 else None
    if owner is not None and not USERNAME_PATTERN.fullmatch(owner):
        raise InvalidModelRef(text, f"{owner!r} is not a user name")
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidModelRef(text, "the model name is empty, too long, or starts or ends with a space")
    return ModelRef(owner=owner, name=name, alias=alias, version=version)


# -- aliases ------------------------------------------------------------------------------------


def check_alias(alias: str) -> str:
    """The alias if it is usable (``ALIAS_PATTERN``); raise InvalidInput (field ``alias``) otherwise."""
    if not ALIAS_PATTERN.fullmatch(alias):
        raise InvalidInput(f"alias {alias!r}: {_alias_problem(alias)}", field="alias")
    return alias


def _alias_problem(alias: str) -> str:
    if not _ALIAS_SHAPE.fullmatch(alias):
        return f"an alias is 1-{MAX_ALIAS_LENGTH} letters, digits, '_' or '-'"
    if alias.lower() == LATEST:
        return "'latest' is reserved for the latest version"
    return "'v' followed by digits is reserved for version numbers; write name/<version> for a version"


@attrs.frozen(kw_only=True)
class AliasMove:
    """What moving an alias did: it now points at ``version``; it pointed at ``previous`` (None:
    the alias is new). The service audits it."""

    asset_id: str
    alias: str
    version: int
    previous: int | None


# -- versions -----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ModelVersionInfo:
    """What the registry keeps of one model version, beside the catalog's asset version."""

    asset_id: str
    version: int
    description: str = ""
    tags: Mapping[str, str] = attrs.field(factory=dict)
    #: The run that made it: the training job's id, or the MLflow run's.
    run_id: str | None = None
    source: ModelSource = ModelSource.TRAINING
    created_at: datetime
    updated_at: datetime
    deleted: bool = False


def check_version_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags as a dict if they are within MLflow's limits; raise InvalidInput (field ``tags``)."""
    if len(tags) > MAX_VERSION_TAGS:
        raise InvalidInput(f"a model version has at most {MAX_VERSION_TAGS} tags", field="tags")
    for key, value in tags.items():
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_TAG_KEY_LENGTH:
            raise InvalidInput(f"tag key {key!r} must be 1-{MAX_TAG_KEY_LENGTH} characters", field="tags")
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE_LENGTH:
            raise InvalidInput(
                f"tag {key!r} must have a text value of at most {MAX_TAG_VALUE_LENGTH} characters",
                field="tags",
            )
    return dict(tags)


def check_version_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(
            f"description must be at most {MAX_DESCRIPTION_LENGTH} characters", field="description"
        )
    return description


# -- errors -------------------------------------------------------------------------------------


class ModelNotFound(NotFound):
    """No such registered model (``model``: its name or its asset id)."""

    def __init__(self, model: str) -> None:
        super().__init__(f"model {model!r} not found", model=model)
        self.model = model


class ModelVersionNotFound(NotFound):
    """The model has no such version, or it was deleted."""

    def __init__(self, model: str, version: int) -> None:
        super().__init__(f"model {model!r} has no version {version}", model=model, version=version)
        self.model = model
        self.version = version


class AliasNotFound(NotFound):
    """The model has no such alias."""

    def __init__(self, model: str, alias: str) -> None:
        super().__init__(f"model {model!r} has no alias {alias!r}", model=model, alias=alias)
        self.model = model
        self.alias = alias


class AliasInUse(Conflict):
    """A delete refused while aliases point at the version (``version``) or at any version of the
    model (``version`` None); ``aliases`` names them."""

    def __init__(self, model: str, version: int | None, aliases: Sequence[str]) -> None:
        self.model = model
        self.version = version
        self.aliases: tuple[str, ...] = tuple(aliases)
        named = ", ".join(self.aliases)
        what = f"version {version} of {model!r}" if version is not None else repr(model)
        super().__init__(
            f"{what} is still aliased as {named}: move or delete the aliases first",
            model=model,
            version=version,
            aliases=list(self.aliases),
        )
