"""Compile the record scanner (protocol/records/validate.py) with mypyc, next to its source.

    python scripts/build_accel.py        # exit status 0 either way; says what it did

Optional: without mypyc (the ``test`` extra installs it) or a C compiler, nothing is built and
the broker uses the pure-Python module (``protocol.records.scanner.COMPILED`` tells which).
The extension is rebuilt when the source is newer; ``scanner`` ignores a stale one anyway.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path("protocol/records/validate.py")


def main() -> int:
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    target = ROOT / SOURCE.with_name(SOURCE.stem + suffix)
    if target.exists() and target.stat().st_mtime >= (ROOT / SOURCE).stat().st_mtime:
        print(f"record scanner: {target.relative_to(ROOT)} is up to date")
        return 0
    try:
        import mypyc  # noqa: F401
    except ImportError:
        print("record scanner: mypyc not installed, using pure Python")
        return 0
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        print(f"record scanner: no C compiler ({compiler}), using pure Python")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        # Built in a copy of the package: mypyc's setup.py must not read this project's pyproject.
        build = Path(tmp)
        shutil.copytree(
            ROOT / "protocol", build / "protocol", ignore=shutil.ignore_patterns("*.so", "__pycache__")
        )
        result = subprocess.run(
            [sys.executable, "-m", "mypyc", str(SOURCE)],
            cwd=build,
            env={**os.environ, "PYTHONPATH": str(build)},
            capture_output=True,
            text=True,
            check=False,
        )
        built = sorted((build / SOURCE.parent).glob(f"{SOURCE.stem}*{suffix}"))
        if result.returncode != 0 or not built:
            print(
                "record scanner: mypyc failed, using pure Python\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
            return 0
        for path in built:  # the extension and its mypyc runtime library
            shutil.copy2(path, ROOT / SOURCE.parent / path.name)
    print(f"record scanner: compiled {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
