"""Brook's pytest plugin used by a project of its own (``embedded_sample/``), run in a subprocess
as a user would run it: confluent-kafka and aiokafka against the plugin's fixtures, isolated
topics, a per-test broker, overrides from pytest.ini and the command line. Two sessions run at
once, as pytest-xdist workers would: each has its own broker on its own port 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = Path(__file__).resolve().parent / "embedded_sample"
#: The tests in embedded_sample/check_*.py (parametrized cases counted).
EXPECTED_PASSED = 15
TIMEOUT = 240


def sample_session(junit: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # Only the plugin under test (and pytest's own): deterministic whether or not the installed
    # package already registers it through its pytest11 entry point.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "broker.pytest_plugin",
        "-p",
        "no:cacheprovider",
        "-q",
        "--brook-override",
        "message.max.bytes=2000000",
        f"--junitxml={junit}",
    ]
    return subprocess.Popen(command, cwd=SAMPLE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def outcome(junit: Path) -> dict[str, int]:
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    counts = {key: int(suite.get(key, "0")) for key in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return counts


def test_sample_project_passes_in_two_parallel_sessions(tmp_path: Path) -> None:
    sessions = [(sample_session(tmp_path / f"s{i}.xml"), tmp_path / f"s{i}.xml") for i in range(2)]
    for proc, junit in sessions:
        output, _ = proc.communicate(timeout=TIMEOUT)
        text = output.decode(errors="replace")
        assert proc.returncode == 0, text
        assert outcome(junit) == {
            "tests": EXPECTED_PASSED,
            "failures": 0,
            "errors": 0,
            "skipped": 0,
            "passed": EXPECTED_PASSED,
        }, text


def test_a_failing_sample_test_is_reported_as_failed(tmp_path: Path) -> None:
    """The subprocess check can fail: a test of the sample that expects the wrong thing fails."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_wrong.py").write_text(
        "def test_wrong(kafka_admin, kafka_topic):\n"
        "    assert kafka_admin.describe_topic(kafka_topic).partitions == 2\n"
    )
    junit = tmp_path / "out.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "broker.pytest_plugin", "-q", f"--junitxml={junit}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 1, result.stdout.decode(errors="replace")
    assert outcome(junit)["failures"] == 1


def test_the_pytest11_entry_point_activates_the_plugin_without_p(tmp_path: Path) -> None:
    """Installed (pip install brook), the plugin is active without -p: pyproject's entry point,
    declared in a distribution's metadata on the path (as an install writes it), is enough."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    entry_points = project["project"]["entry-points"]["pytest11"]
    assert entry_points == {"brook": "broker.pytest_plugin"}
    dist = tmp_path / "site" / "brook_entry_point_check-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brook-entry-point-check\nVersion: 0.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[pytest11]\n{lines}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(tmp_path / "site")])}
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    junit = tmp_path / "out.xml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--brook-override",
            "message.max.bytes=2000000",
            f"--junitxml={junit}",
        ],
        cwd=SAMPLE,
        env=env,
        capture_output=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stdout.decode(errors="replace")
    assert outcome(junit)["passed"] == EXPECTED_PASSED
