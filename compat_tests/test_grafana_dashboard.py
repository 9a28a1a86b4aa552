"""The Grafana dashboard checked against Grafana's own dashboard schema: the TypeScript types
that @grafana/schema generates from Grafana's CUE schema, type-checked by tsc with excess-property
checks (a misspelled or unknown key, a wrong type or a missing required field fails). Grafana itself
cannot be installed on these machines (no package of it in the reachable registries), so the
dashboard is not loaded in a running Grafana; the metric names it queries are checked against a
real scrape in tests/broker/test_metrics.py."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from compat_tests.clients.tools import NODE_DIR, missing

DASHBOARD = Path(__file__).resolve().parents[1] / "docker" / "grafana" / "brook-dashboard.json"
SCHEMA = NODE_DIR / "node_modules" / "@grafana" / "schema"
TSC = NODE_DIR / "node_modules" / ".bin" / "tsc"

#: Grafana's string enums are TypeScript enums; JSON holds their values. Json<T> maps every
#: string type to the union of its values (`${Enum}`), and recurses through arrays and objects,
#: keeping the object keys (so excess keys are still errors).
JSON_OF = (
    "type Json<T> = T extends string ? `${T}` : T extends (infer U)[] ? Json<U>[] : "
    "T extends object ? { [K in keyof T]: Json<T[K]> } : T;\n"
)
#: The import header of an exported dashboard ("Export for sharing externally"), which Grafana's
#: import step reads and the dashboard model does not hold.
IMPORT_HEADER = """
type Input = { name: string; label: string; description?: string; type: "datasource"; pluginId: string;
  pluginName: string };
type Requirement = { type: "grafana" | "datasource" | "panel"; id: string; name: string; version: string };
"""


def _tsc(tmp_path: Path, dashboard: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    body = dict(dashboard)
    inputs = body.pop("__inputs", [])
    requires = body.pop("__requires", [])
    source = (
        f'import type {{ Dashboard }} from "{SCHEMA}";\n{JSON_OF}{IMPORT_HEADER}'
        f"export const inputs: Input[] = {json.dumps(inputs, indent=1)};\n"
        f"export const requires: Requirement[] = {json.dumps(requires, indent=1)};\n"
        f"export const dashboard: Json<Dashboard> = {json.dumps(body, indent=1)};\n"
    )
    check = tmp_path / "dashboard.ts"
    check.write_text(source)
    return subprocess.run(
        [str(TSC), "--noEmit", "--strict", "--skipLibCheck", "--moduleResolution", "bundler",
         "--module", "esnext", "--target", "es2020", str(check)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    if not TSC.exists() or not (SCHEMA / "package.json").exists():
        missing(f"@grafana/schema and typescript are not installed: run `npm ci` in {NODE_DIR}")
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_the_dashboard_matches_grafanas_schema(dashboard: dict[str, Any], tmp_path: Path) -> None:
    result = _tsc(tmp_path, dashboard)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "spoil",
    [
        lambda d: d["panels"][1].update(gridpos=d["panels"][1].pop("gridPos")),  # a misspelled key
        lambda d: d.update(schemaVersion="39"),  # a wrong type
        lambda d: d["panels"][1]["fieldConfig"]["defaults"].update(unit=7),
        lambda d: d["templating"]["list"][1].update(refresh="sometimes"),  # not an enum value
    ],
)
def test_the_check_refuses_a_spoiled_dashboard(dashboard: dict[str, Any], tmp_path: Path, spoil: Any) -> None:
    spoiled = json.loads(json.dumps(dashboard))
    spoil(spoiled)
    result = _tsc(tmp_path, spoiled)
    assert result.returncode != 0
    assert re.search(r"error TS\d+", result.stdout), result.stdout


def test_every_datasource_reference_is_an_import_input(dashboard: dict[str, Any]) -> None:
    declared = {f"${{{entry['name']}}}" for entry in dashboard["__inputs"]}
    used = set(re.findall(r"\$\{DS_[A-Z_]+\}", json.dumps(dashboard)))
    assert used and used <= declared
