"""Typed application state of the SCIM routes (an aiohttp AppKey, no globals)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from syncsvc.scim.cache import ResponseCache
from syncsvc.scim.service import ScimService
from syncsvc.settings import ScimSettings

__all__ = ["SCIM", "ScimState"]


@dataclass(frozen=True, slots=True)
class ScimState:
    service: ScimService
    settings: ScimSettings
    cache: ResponseCache


SCIM = web.AppKey("scim", ScimState)
