"""`python -m uvicorn` with the same flags, serving with the drain (child/drain.py).

uvicorn's own `run` builds a plain `Server`, whose shutdown closes a connection it accepted a
moment before a reload's SIGTERM while the request still sits in the socket buffer: that client
sees a reset. The swap is made when this module is imported, not in `main`: with `--workers N`
uvicorn spawns its workers, and a spawned child imports the `-m` module again (as
`__mp_main__`) before it builds its Server.
"""

from __future__ import annotations

from launcher.child.drain import serve_uvicorn_cli_with_the_drain

serve_uvicorn_cli_with_the_drain()


def main() -> None:
    from uvicorn.main import main as uvicorn

    uvicorn(prog_name="uvicorn")


if __name__ == "__main__":
    main()
