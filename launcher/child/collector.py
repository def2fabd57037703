"""The cyclic collector while a process loads the project: paused.

Importing a project makes thousands of objects that all stay alive; each allocation burst runs
a collection that finds nothing to free, again and again (Django's setup, the URLconf and the
demo's WSGI app: 0.60 CPU-s with it, 0.50 paused). Once loaded, what start-up made is frozen out
of the collector's sight where the process goes on (launcher.child.app, .prepare, the dev tiers).
Only imports are paused: steps such as `migrate` make garbage of their own and run collected.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside; as it was after (a pause inside a pause stays paused)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
