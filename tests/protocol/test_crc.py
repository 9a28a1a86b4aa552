"""protocol.records.crc: the crc32c package's C extension, loaded without the package's
``__init__`` (which imports importlib.metadata and argparse)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from protocol.records.crc import crc32c

REPO = Path(__file__).resolve().parents[2]


def test_known_value() -> None:
    # RFC 3720's check value of CRC-32C.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


@given(st.binary(max_size=4096), st.integers(0, 2**32 - 1))
def test_matches_the_package(data: bytes, start: int) -> None:
    import crc32c as package

    assert crc32c(data) == package.crc32c(data)
    assert crc32c(memoryview(data)) == package.crc32c(data)
    assert crc32c(data, start) == package.crc32c(data, start)


def test_loading_it_imports_neither_metadata_nor_argparse_and_the_package_still_imports() -> None:
    code = (
        "import sys\n"
        "from protocol.records.crc import crc32c\n"
        "assert crc32c(b'123456789') == 0xE3069283\n"
        "assert 'importlib.metadata' not in sys.modules and 'argparse' not in sys.modules\n"
        "import crc32c as package\n"
        "assert package.crc32c is crc32c and package.__version__\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
