"""`python -m launcher` is the same as the `launch` console script."""

from __future__ import annotations

from launcher.launch import main

if __name__ == "__main__":
    raise SystemExit(main())
