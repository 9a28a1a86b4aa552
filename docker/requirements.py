"""Print Brook's pinned run-time requirements from pyproject.toml, one per line: the
dependencies plus the ``fast`` extra (uvloop). Used by the Dockerfile and by
``scripts/container-engine.sh wheels`` so the image never has a second, drifting list.

    python3 docker/requirements.py [pyproject.toml]
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

EXTRAS = ("fast",)


def requirements(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {})
    return [*project["dependencies"], *(req for extra in EXTRAS for req in extras.get(extra, []))]


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "pyproject.toml")
    print("\n".join(requirements(path)))
