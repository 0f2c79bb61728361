"""The HTTP face: the Litestar app factory, authentication, problem details, system routes."""

from studio9.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
