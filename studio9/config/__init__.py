"""Configuration: the process's settings (``Settings``, from ``STUDIO9_*``) and the config-settings
service (settings per service and job type, with history)."""

from studio9.config.settings import Settings, env_name

__all__ = ["Settings", "env_name"]
