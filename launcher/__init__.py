"""launcher: run a Django site from a declarative YAML profile, supervised."""

__version__ = "0.1.0"
