"""CRC-32C (Castagnoli), as record batches (v2) and producer-state snapshots carry it.

The function is the ``crc32c`` package's C extension. Importing that package runs its
``__init__``, which imports ``importlib.metadata`` (for ``__version__``) and ``argparse`` (its
command line): ~20 ms, most of the import time of Brook's record layer and of the first start of
an embedded broker. So the extension module is loaded here by itself, registered under its own
name so that a later ``import crc32c`` reuses it; if that fails for any reason (another layout of
the package), the package is imported as usual.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

_EXTENSION = "crc32c._crc32c"


def _load_extension() -> Any:
    loaded = sys.modules.get(_EXTENSION)
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("crc32c")  # finds without importing
    if package is None or not package.submodule_search_locations:
        raise ImportError("crc32c is not a package")
    for directory in package.submodule_search_locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = Path(directory) / f"_crc32c{suffix}"
            if path.is_file():
                loader = importlib.machinery.ExtensionFileLoader(_EXTENSION, str(path))
                spec = importlib.util.spec_from_file_location(_EXTENSION, path, loader=loader)
                if spec is None:
                    break
                module = importlib.util.module_from_spec(spec)
                loader.exec_module(module)
                sys.modules[_EXTENSION] = module
                return module
    raise ImportError("crc32c's extension module was not found")


def _crc32c_function() -> Callable[..., int]:
    try:
        function: Callable[..., int] = _load_extension().crc32c
    except (ImportError, OSError, AttributeError):
        import crc32c as package

        function = package.crc32c
    return function


#: ``crc32c(data: Buffer, value: int = 0) -> int``.
crc32c: Callable[..., int] = _crc32c_function()
