"""Configuration: the application's settings and backend URLs (and, later, the config-settings service)."""

from studio9.config.settings import Settings, env_name
from studio9.config.urls import AdapterURL, redact

__all__ = ["AdapterURL", "Settings", "env_name", "redact"]
