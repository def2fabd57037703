"""The JSON Schema of a profile (`launch schema`), from the pydantic model: `extends:` allowed,
and `${VAR}` accepted wherever a value goes, since it is interpolated before validation."""

from __future__ import annotations

from typing import Any

from launcher.plan.schema import Profile

_INTERPOLATED = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"}
_KEEP_OUTSIDE = ("default", "title", "description")


def profile_json_schema() -> dict[str, Any]:
    """The JSON Schema of a profile file as written: `extends:` allowed, `${VAR}` anywhere."""
    schema = Profile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "launcher profile"
    schema["properties"] = {
        "extends": {
            "type": "string",
            "title": "Extends",
            "description": "another profile: a name in the same directory, or a path",
        },
        **schema["properties"],
    }
    for model in (schema, *schema.get("$defs", {}).values()):
        for name, prop in model.get("properties", {}).items():
            if "$ref" not in prop and prop.get("type") not in ("string", "object", "array"):
                outside = {k: prop.pop(k) for k in _KEEP_OUTSIDE if k in prop}
                model["properties"][name] = {"anyOf": [prop, _INTERPOLATED], **outside}
    return schema
