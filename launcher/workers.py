"""gunicorn worker classes, loaded by import string inside gunicorn's worker processes.

gunicorn can only take a worker class by name, and uvicorn-worker reads its uvicorn settings from
the class attribute ``CONFIG_KWARGS``. Rather than have users write a subclass per setting
(the usual ``lifespan = "off"`` file for Django), this one class takes its kwargs from the
environment the launcher sets: ``LAUNCHER_UVICORN_CONFIG`` holds them as JSON.
"""

from __future__ import annotations

import json
import os
from typing import Any

from uvicorn_worker import UvicornWorker as _BaseUvicornWorker

CONFIG_ENV = "LAUNCHER_UVICORN_CONFIG"


class UvicornWorker(_BaseUvicornWorker):
    """uvicorn-worker with CONFIG_KWARGS from the profile; lifespan off unless it says otherwise."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": "auto", "lifespan": "off"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.CONFIG_KWARGS = {
            **type(self).CONFIG_KWARGS,
            **json.loads(os.environ.get(CONFIG_ENV) or "{}"),
        }
        super().__init__(*args, **kwargs)
