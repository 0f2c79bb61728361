"""The catalog: assets of every kind (files, tables, models…) with immutable versions and lineage.

The record common to every kind lives here (``domain``), with the store it needs (``ports``),
the use cases and the one access rule (``service``), and the routes (``api``). The contexts that
own kinds write their assets' content through ``CatalogService``; the catalog never imports them.
"""

from studio9.catalog.domain import (
    Access,
    Asset,
    AssetHasDependents,
    AssetKind,
    AssetNameTaken,
    AssetNotFound,
    AssetStatus,
    AssetVersion,
    Direction,
    LineageEdge,
    LineageGraph,
    owner_access,
)
from studio9.catalog.ports import CatalogStore, KindHandler
from studio9.catalog.service import CatalogService

__all__ = [
    "Access",
    "Asset",
    "AssetHasDependents",
    "AssetKind",
    "AssetNameTaken",
    "AssetNotFound",
    "AssetStatus",
    "AssetVersion",
    "CatalogService",
    "CatalogStore",
    "Direction",
    "KindHandler",
    "LineageEdge",
    "LineageGraph",
    "owner_access",
]
