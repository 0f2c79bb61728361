"""HTTP routes of config settings: ``/api/v1/services/{service}/config-settings``."""

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, delete, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from studio9.auth.domain import Principal
from studio9.config.domain import NAME_PATTERN, ConfigSetting, ConfigSettingVersion
from studio9.config.service import ConfigService
from studio9.urls import redact_values
from studio9.web.paging import keyset_page
from studio9.web.responses import also, problems


class SettingIn(msgspec.Struct, forbid_unknown_fields=True):
    value: Any
    tags: list[str] = msgspec.field(default_factory=list)


class SettingOut(msgspec.Struct):
    service: str
    name: str
    value: Any
    tags: list[str]
    version: int
    created_at: datetime
    updated_at: datetime
    updated_by: str

    @classmethod
    def from_domain(cls, setting: ConfigSetting) -> "SettingOut":
        return cls(
            service=setting.service,
            name=setting.name,
            value=redact_values(setting.value),
            tags=list(setting.tags),
            version=setting.version,
            created_at=setting.created_at,
            updated_at=setting.updated_at,
            updated_by=setting.updated_by,
        )


class SettingPageOut(msgspec.Struct):
    items: list[SettingOut]
    next_cursor: str | None


class VersionOut(msgspec.Struct):
    version: int
    value: Any
    tags: list[str]
    by: str
    at: datetime
    deleted: bool

    @classmethod
    def from_domain(cls, version: ConfigSettingVersion) -> "VersionOut":
        return cls(
            version=version.version,
            value=redact_values(version.value),
            tags=list(version.tags),
            by=version.by,
            at=version.at,
            deleted=version.deleted,
        )


class HistoryOut(msgspec.Struct):
    items: list[VersionOut]


IfMatch = Annotated[str | None, HeaderParameter(name="if-match", required=False)]


class ConfigSettingController(Controller):
    path = "/services/{service:str}/config-settings"
    tags = ["config"]

    @put(
        "/{name:str}",
        operation_id="PutConfigSetting",
        status_code=200,
        responses=problems(403, 412) | also(201, SettingOut, "Created."),
    )
    async def put_setting(
        self,
        service: FromPath[str],
        name: FromPath[str],
        data: JSONBody[SettingIn],
        principal: NamedDependency[Principal],
        config_service: NamedDependency[ConfigService],
        if_match: IfMatch = None,
    ) -> Response[SettingOut]:
        """Create (201) or replace (200) a setting; admins only. ``If-Match`` with the ETag from a GET
        makes it conditional: 412 when someone changed it in between."""
        setting, created = await config_service.put(
            principal, service, name, data.value, data.tags, if_match=if_match
        )
        return Response(
            SettingOut.from_domain(setting),
            status_code=201 if created else 200,
            headers={"ETag": setting.etag},
        )

    @get("/{name:str}", operation_id="GetConfigSetting", responses=problems(422))
    async def get_setting(
        self,
        service: FromPath[str],
        name: FromPath[str],
        principal: NamedDependency[Principal],
        config_service: NamedDependency[ConfigService],
    ) -> Response[SettingOut]:
        """One setting, with its version as the ETag."""
        setting = await config_service.get(principal, service, name)
        return Response(SettingOut.from_domain(setting), headers={"ETag": setting.etag})

    @delete("/{name:str}", operation_id="DeleteConfigSetting", status_code=204, responses=problems(403, 412))
    async def delete_setting(
        self,
        service: FromPath[str],
        name: FromPath[str],
        principal: NamedDependency[Principal],
        config_service: NamedDependency[ConfigService],
        if_match: IfMatch = None,
    ) -> None:
        """Remove a setting (its history stays); admins only; ``If-Match`` honoured."""
        await config_service.delete(principal, service, name, if_match=if_match)

    @get("/", operation_id="ListConfigSettings")
    async def list_settings(
        self,
        service: FromPath[str],
        principal: NamedDependency[Principal],
        config_service: NamedDependency[ConfigService],
        tag: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        cursor: FromQuery[str | None] = None,
    ) -> SettingPageOut:
        """The service's settings by name; ``tag`` keeps those carrying it."""
        page, next_cursor = await keyset_page(
            lambda size, after: config_service.list(principal, service, tag=tag, limit=size, after=after),
            limit=limit,
            cursor=cursor,
            key=lambda setting: setting.name,
            pattern=NAME_PATTERN.pattern,
        )
        return SettingPageOut([SettingOut.from_domain(s) for s in page], next_cursor=next_cursor)

    @get("/{name:str}/history", operation_id="GetConfigSettingHistory")
    async def history(
        self,
        service: FromPath[str],
        name: FromPath[str],
        principal: NamedDependency[Principal],
        config_service: NamedDependency[ConfigService],
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> HistoryOut:
        """Every version, newest first: value, tags, who, when (deletions included)."""
        versions = await config_service.history(principal, service, name, limit=limit)
        return HistoryOut([VersionOut.from_domain(v) for v in versions])
