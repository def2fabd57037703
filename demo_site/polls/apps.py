"""App config for polls."""

from __future__ import annotations

from django.apps import AppConfig


class PollsConfig(AppConfig):
    """Registers the polls app; BigAutoField matches the project default."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "polls"
