"""The committed generated modules are exactly what the schemas generate, and nothing at run
time reads the schemas (``../shared``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from protocol.codegen.generate import generate, write_or_check

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO.parent / "shared" / "kafka-protocol"
MESSAGES = REPO / "protocol" / "messages"


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return generate(SCHEMAS)


def test_committed_modules_are_up_to_date(generated: dict[str, str]) -> None:
    problems = write_or_check(generated, MESSAGES, check=True)
    assert problems == [], "run `python -m protocol.codegen` and commit:\n" + "\n".join(problems)


def test_generation_covers_every_schema(generated: dict[str, str]) -> None:
    schemas = list((SCHEMAS / "message").glob("*.json")) + list((SCHEMAS / "internal-records").glob("*.json"))
    assert len(generated) == len(schemas) + 2  # plus __init__.py and _index.py
    assert "produce_request.py" in generated and "_index.py" in generated


def test_the_check_notices_edits_missing_and_stale_files(generated: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "messages"
    shutil.copytree(MESSAGES, out, ignore=shutil.ignore_patterns("__pycache__"))
    assert write_or_check(generated, out, check=True) == []
    edited = out / "metadata_response.py"
    edited.write_text(edited.read_text(encoding="utf-8").replace("_S0", "_S9", 1), encoding="utf-8")
    (out / "fetch_request.py").unlink()
    (out / "hand_written.py").write_text("x = 1\n", encoding="utf-8")
    problems = write_or_check(generated, out, check=True)
    assert len(problems) == 3
    assert any("metadata_response.py" in p and "differs" in p for p in problems)
    assert any("fetch_request.py" in p and "missing" in p for p in problems)
    assert any("hand_written.py" in p for p in problems)
    # and writing repairs all three
    assert write_or_check(generated, out, check=False) == []
    assert write_or_check(generated, out, check=True) == []


def test_the_command_line_check_passes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "protocol.codegen", "--check"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr


RUNTIME_PROBE = textwrap.dedent(
    """
    import json, os, sys

    seen = []
    WATCHED = ("kafka-protocol", os.sep + "shared" + os.sep)

    def hook(event, args):
        if event in ("open", "os.listdir", "os.scandir", "glob.glob", "os.chdir") and args:
            path = args[0]
            if isinstance(path, bytes):
                path = path.decode(errors="replace")
            if isinstance(path, str) and any(w in os.path.abspath(path) for w in WATCHED):
                seen.append((event, path))

    sys.addaudithook(hook)

    import importlib
    import pkgutil

    import protocol.api as api
    import protocol.error_codes
    import protocol.framing
    import protocol.messages

    modules = [m.name for m in pkgutil.iter_modules(protocol.messages.__path__)]
    for name in modules:
        importlib.import_module("protocol.messages." + name)
    for spec in api.all_apis():
        for version in range(spec.min_version, spec.max_version + 1):
            body = spec.request_type()()
            api.decode_request(api.encode_request(body, version, 1)[4:])
            api.encode_response(spec.api_key, version, 1, spec.response_type()())
    for name in api.DATA:
        api.data_type(name)
    runtime_seen = list(seen)

    # positive control: the hook does see a read of the schemas
    try:
        open(sys.argv[1]).close()
    except OSError:
        pass
    print(json.dumps({"modules": len(modules), "seen": runtime_seen, "control": seen[len(runtime_seen):],
                      "codegen_loaded": "protocol.codegen" in sys.modules}))
    """
)


def test_nothing_at_run_time_reads_the_schemas(tmp_path: Path) -> None:
    """Import every generated module and use the registry in a fresh interpreter started away
    from the repository, recording (with an audit hook) every file opened or listed: none may be
    under ``../shared``. A read of a schema by the probe itself shows that the hook works."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    control = SCHEMAS / "message" / "ProduceRequest.json"
    result = subprocess.run(
        [sys.executable, "-c", RUNTIME_PROBE, str(control)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["modules"] >= 180
    assert report["seen"] == []
    assert report["control"], "the audit hook did not see the probe's own read of a schema"
    assert report["codegen_loaded"] is False
