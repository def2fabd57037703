"""The launcher's benchmark suite: what `launch` costs against the raw server, and what it buys.

Run it with `benchmarks/run` (or `benchmarks/run --quick`); it writes docs/benchmarks.md,
docs/benchmarks.json and the docs/benchmarks-*.png plots from what it measured.
"""

from __future__ import annotations
