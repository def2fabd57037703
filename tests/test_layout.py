"""The README's Layout section names every module of the package, each under its directory:
a module added without a word on what it is for fails here, as does one the README still names
after it is gone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "launcher"


def layout() -> dict[str, str]:
    """The Layout block's text by directory (`launcher/run/` -> its lines), top-level files
    under `launcher/`."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    sections: dict[str, str] = {}
    current = ""
    for line in block.splitlines():
        head = re.match(r"(launcher/\S*)", line)
        if head:
            name = head.group(1)
            current = name if name.endswith("/") else "launcher/"
            sections[current] = sections.get(current, "") + " " + line[len(name):]
            if not name.endswith("/"):
                sections[current] += " " + Path(name).name
        elif not line.startswith(" "):
            current = ""  # demo_site/, tests/: not the package
        elif current:
            sections[current] += " " + line
    return sections


def modules() -> list[tuple[str, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        directory = path.parent.relative_to(ROOT).as_posix() + "/"
        found.append((directory, path.name))
    return found


@pytest.mark.parametrize(("directory", "module"), modules())
def test_every_module_is_in_the_layout(directory: str, module: str) -> None:
    sections = layout()
    # A subpackage (plan/backends/) may be described in its parent's lines.
    text = sections.get(directory) or sections.get(str(Path(directory).parent) + "/", "")
    assert re.search(rf"(?<![\w.]){re.escape(module)}\b", text), (
        f"README's Layout names no {directory}{module}"
    )


def test_the_layout_names_no_module_that_is_gone() -> None:
    present = {(directory, module) for directory, module in modules()}
    for directory, text in layout().items():
        for module in re.findall(r"(?<![\w./])(\w+\.py)\b", text):
            assert any(m == module for _, m in present if _.startswith(directory)), (
                f"README's Layout names {directory}{module}, which is not in the tree"
            )
