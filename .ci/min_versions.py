"""Print pip requirements that pin every declared dependency (core and the given extras) to its floor.

Usage: python .ci/min_versions.py test > floors.txt (Python 3.11+, for tomllib). A ``name>=X`` in
pyproject.toml becomes ``name==X``; torch stays at the CPU build CI installs (no CPU wheel of its
floor can be downloaded here; see README).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

CPU_TORCH = "torch==2.13.0"


def floors(pyproject: Path, extras: list[str]) -> list[str]:
    """``name==floor`` for each dependency of the project and ``extras``, first spelling of each name kept."""
    project = tomllib.loads(pyproject.read_text())["project"]
    declared = list(project["dependencies"])
    for extra in extras:
        declared += project["optional-dependencies"][extra]
    pins: dict[str, str] = {}
    for requirement in declared:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?>=([^,;\s]+)", requirement.strip())
        if match is None:
            raise ValueError(f"{requirement!r} has no plain 'name>=floor' form: give it one so CI can test its floor")
        name, version = match.group(1), match.group(3)
        pins.setdefault(name.lower(), CPU_TORCH if name == "torch" else f"{name}=={version}")
    return list(pins.values())


if __name__ == "__main__":
    print("\n".join(floors(Path(__file__).parents[1] / "pyproject.toml", sys.argv[1:])))
