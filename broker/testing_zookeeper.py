"""Real ZooKeeper servers for tests, from an installed ZooKeeper distribution, on loopback ports.

Used by the ``kafka_cluster`` fixture and :func:`broker.embedded_cluster` when the caller names no
ZooKeeper, and by Brook's own test harness (``compat_tests/zookeeper.py``). Never a fake: a real
``QuorumPeerMain`` run with ``java``, from

* ``$ZOOKEEPER_HOME`` when set (an Apache binary release: its ``lib/*.jar``), else
* Debian's ``zookeeper`` package (``/usr/share/java/zookeeper.jar``, whose manifest names the
  dependencies; Debian's ``/usr/share/zookeeper`` is its home).

``ZooKeeperServer`` is one standalone server with its own data dir and config; ``ZooKeeperEnsemble``
is a real quorum whose members can be killed and restarted one by one. The jars and
``QuorumPeerMain`` are run directly (no zkServer.sh: no pid files in /var, no log4j set-up), the
admin server off and only the four-letter words used here whitelisted. Each process runs in a
session of its own and is killed as a group at stop. Every wait has a deadline.

This module imports only the standard library and starts nothing at import.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from broker.testing_ports import free_port

ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
#: Environment variable naming an Apache ZooKeeper release directory (its jars in ``lib/``).
ZOOKEEPER_HOME_ENV = "ZOOKEEPER_HOME"
# slf4j-nop keeps the console quiet (the server's own output goes to zookeeper.log in its dir).
EXTRA_JARS = (Path("/usr/share/java/slf4j-nop.jar"),)
QUORUM_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
# Small heap and C1 only: a test server starts in about a second instead of three.
JVM_FLAGS = ("-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto")


class ZooKeeperMissing(RuntimeError):
    """No ZooKeeper distribution or no java: the message says how to install them."""


def zookeeper_classpath() -> list[Path]:
    """The jars to run ZooKeeper with; raises :class:`ZooKeeperMissing` with the fix."""
    home = os.environ.get(ZOOKEEPER_HOME_ENV)
    if home:
        jars = sorted(Path(home).glob("lib/*.jar")) + sorted(Path(home).glob("zookeeper-*.jar"))
        if not any(j.name.startswith("zookeeper-") for j in jars):
            raise ZooKeeperMissing(
                f"${ZOOKEEPER_HOME_ENV}={home} holds no zookeeper-*.jar (in lib/ or itself)"
            )
    elif ZOOKEEPER_JAR.exists():
        jars = [ZOOKEEPER_JAR, *(p for p in EXTRA_JARS if p.exists())]
    else:
        raise ZooKeeperMissing(
            f"{ZOOKEEPER_JAR} not found: install Debian's zookeeper package "
            f"(`apt-get install zookeeper`, or `make test` as root, which installs it), "
            f"or set {ZOOKEEPER_HOME_ENV} to an Apache ZooKeeper release"
        )
    if shutil.which("java") is None:
        raise ZooKeeperMissing("java not found: install a JRE (Debian's default-jre-headless)")
    return jars


def require_zookeeper() -> None:
    """Raise :class:`ZooKeeperMissing` with the fix when ZooKeeper or java is not installed."""
    zookeeper_classpath()


def zookeeper_available() -> bool:
    try:
        zookeeper_classpath()
    except ZooKeeperMissing:
        return False
    return True


def four_letter_word(port: int, word: str, timeout: float = 2.0) -> str:
    """Send a four-letter command and return the whole answer ('' when the server is not up)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(word.encode("ascii"))
            chunks: list[bytes] = []
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                chunks.append(chunk)
    except OSError:
        return ""
    return b"".join(chunks).decode("utf-8", "replace")


def server_mode(port: int) -> str | None:
    """'standalone', 'leader' or 'follower' when the server serves clients, else None."""
    for line in four_letter_word(port, "srvr").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


class ZooKeeperServer:
    """One ZooKeeper server process: standalone, or a member of an ensemble (``peers`` set)."""

    def __init__(
        self,
        base_dir: Path,
        client_port: int | None = None,
        *,
        my_id: int = 1,
        peers: dict[int, tuple[int, int]] | None = None,
        tick_time_ms: int = 500,
    ) -> None:
        self.base_dir = base_dir
        self.client_port = client_port or free_port()
        self.my_id = my_id
        self.peers = peers  # my_id -> (quorum port, election port); None means standalone
        self.tick_time_ms = tick_time_ms
        self.data_dir = base_dir / "data"
        self.config_path = base_dir / "zoo.cfg"
        self.log_path = base_dir / "zookeeper.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def connect_string(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"tickTime={self.tick_time_ms}",
            f"dataDir={self.data_dir}",
            f"clientPort={self.client_port}",
            "clientPortAddress=127.0.0.1",
            "maxClientCnxns=0",
            "admin.enableServer=false",
            "4lw.commands.whitelist=srvr,ruok,stat",
            # Sessions as short as 2 ticks are allowed: tests expire sessions on purpose.
            "minSessionTimeout=1000",
            "maxSessionTimeout=60000",
        ]
        if self.peers is not None:
            lines += ["initLimit=10", "syncLimit=5", "standaloneEnabled=false"]
            for sid, (quorum, election) in sorted(self.peers.items()):
                lines.append(f"server.{sid}=127.0.0.1:{quorum}:{election}")
            (self.data_dir / "myid").write_text(f"{self.my_id}\n")
        self.config_path.write_text("\n".join(lines) + "\n")

    def command(self) -> list[str]:
        classpath = ":".join(str(p) for p in zookeeper_classpath())
        return [
            "java",
            *JVM_FLAGS,
            "-Dzookeeper.admin.enableServer=false",
            "-Dzookeeper.jmx.log4j.disable=true",
            "-cp",
            classpath,
            QUORUM_MAIN,
            str(self.config_path),
        ]

    def launch(self) -> ZooKeeperServer:
        """Start the process without waiting (an ensemble starts all members, then waits)."""
        command = self.command()  # raises ZooKeeperMissing before anything is written
        if self.alive():
            return self
        self._write_config()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def wait_serving(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"ZooKeeper exited with {self.proc.returncode}:\n{self.log_tail()}")
            if server_mode(self.client_port) is not None:
                return
            # A JVM's start has no event to await from here: the four-letter word is the probe.
            time.sleep(0.05)
        raise TimeoutError(
            f"ZooKeeper on port {self.client_port} not serving after {timeout}s:\n{self.log_tail()}"
        )

    def start(self, timeout: float = START_TIMEOUT) -> ZooKeeperServer:
        self.launch()
        try:
            self.wait_serving(timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal_and_wait(self, sig: int) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=STOP_TIMEOUT)
        self.proc = None

    def stop(self) -> None:
        self._signal_and_wait(signal.SIGTERM)

    def kill(self) -> None:
        self._signal_and_wait(signal.SIGKILL)

    def restart(self, timeout: float = START_TIMEOUT) -> ZooKeeperServer:
        self.stop()
        return self.start(timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class ZooKeeperEnsemble:
    """A real quorum of ``size`` servers on loopback ports; each member can be killed and restarted."""

    def __init__(self, base_dir: Path, size: int = 3) -> None:
        peers = {sid: (free_port(), free_port()) for sid in range(1, size + 1)}
        self.members = [ZooKeeperServer(base_dir / f"zk{sid}", my_id=sid, peers=peers) for sid in peers]

    @property
    def connect_string(self) -> str:
        return ",".join(m.connect_string for m in self.members)

    def start(self, timeout: float = START_TIMEOUT) -> ZooKeeperEnsemble:
        for member in self.members:
            member.launch()
        deadline = time.monotonic() + timeout
        for member in self.members:
            member.wait_serving(max(0.1, deadline - time.monotonic()))
        return self

    def leader(self) -> ZooKeeperServer | None:
        for member in self.members:
            if server_mode(member.client_port) == "leader":
                return member
        return None

    def stop(self) -> None:
        for member in self.members:
            member.stop()

    def kill(self) -> None:
        for member in self.members:
            member.kill()
