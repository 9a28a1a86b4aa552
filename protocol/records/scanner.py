"""The record scanner the broker uses: :func:`protocol.records.validate.scan_records`, compiled.

``make accelerate`` compiles :mod:`protocol.records.validate` with mypyc into an extension module
next to its source (about 40x faster per record). Python imports that extension in preference to
the ``.py``; this module makes sure it is not stale (older than the source: then the source is
loaded instead, with a warning) and names which one is in use (``COMPILED``). Without a compiler
nothing is built and the pure-Python module is used.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from types import ModuleType

from protocol.records import validate as _imported
from protocol.records.validate import MISSING_KEY, TIMESTAMP_OUT_OF_RANGE, RecordProblem, scan_records

__all__ = ["COMPILED", "MISSING_KEY", "TIMESTAMP_OUT_OF_RANGE", "RecordProblem", "load_pure", "scan_records"]

_log = logging.getLogger(__name__)


def load_pure() -> ModuleType:
    """The pure-Python :mod:`protocol.records.validate`, even when the compiled one is built."""
    source = Path(__file__).with_name("validate.py")
    spec = importlib.util.spec_from_file_location("protocol.records._validate_pure", source)
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with the package
        raise ImportError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compiled_is_current() -> bool:
    built = _imported.__file__ or ""
    if not built.endswith((".so", ".pyd")):
        return False
    source = Path(__file__).with_name("validate.py")
    if source.exists() and os.stat(source).st_mtime > os.stat(built).st_mtime:
        _log.warning("%s is older than validate.py: using the pure-Python scanner (make accelerate)", built)
        return False
    return True


#: Whether ``scan_records`` is the mypyc-compiled one.
COMPILED = _compiled_is_current()
if not COMPILED and (_imported.__file__ or "").endswith((".so", ".pyd")):
    scan_records = load_pure().scan_records
