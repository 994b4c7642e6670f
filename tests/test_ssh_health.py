"""`ssh host monalisa health` over a real sshd, as a technician or a monitoring system runs it.

The test starts Debian's OpenSSH server on 127.0.0.1 at a free high port with a host key, a user
key and a config it generates in a temp dir, then runs the real `ssh` client. The remote command
is the plain `monalisa health ...` a technician types: the test's sshd_config puts this checkout's
venv `bin/` first on the login's PATH (`SetEnv PATH=...`, OpenSSH >= 8.7). Nagios exit codes
must survive the SSH hop.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.health import CRITICAL, OK
from appliance.status import StatusWriter, SystemProbe
from tests.support.run import app_env, install_debs, write_astronaut_clip

MONALISA = Path(sys.executable).with_name("monalisa")
SSHD = "/usr/sbin/sshd"
REMOTE_PATH = f"{MONALISA.parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

pytestmark = pytest.mark.system


def ensure_openssh() -> None:
    if os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("ssh-keygen"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("openssh-server/client missing and cannot apt-get install them here")
    install_debs("openssh-server", "openssh-client")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Sshd:
    port: int
    key: Path
    user: str
    proc: subprocess.Popen[str]

    def run(self, *remote: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        cmd = [
            "ssh",
            "-p",
            str(self.port),
            "-i",
            str(self.key),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            f"{self.user}@127.0.0.1",
            *remote,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def health(self, status_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("monalisa", "health", "--status-file", str(status_file), *extra)


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    ensure_openssh()
    d = Path(tempfile.mkdtemp(prefix="ml-sshd-", dir="/tmp"))
    try:
        for name, kind in (("host_key", "ed25519"), ("user_key", "ed25519")):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(d / name)],
                check=True,
                timeout=60,
            )
        shutil.copy(d / "user_key.pub", d / "authorized_keys")
        port = free_port()
        user = getpass.getuser()
        (d / "sshd_config").write_text(
            f"Port {port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {d / 'host_key'}\n"
            f"PidFile {d / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            f"AllowUsers {user}\n"
            "PrintMotd no\n"
            "LogLevel ERROR\n"
            # The remote command is plain `monalisa`: put this venv's bin first on the PATH.
            f"SetEnv PATH={REMOTE_PATH}\n"
        )
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                pytest.fail(f"sshd exited with {proc.returncode}: {out}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail("sshd did not start listening within 20 s")
                time.sleep(0.05)
        server = Sshd(port, d / "user_key", user, proc)
        res = server.run("command", "-v", "monalisa")
        assert res.returncode == 0, res.stderr
        # The login's own shell start-up may add to PATH; the venv's script must still win.
        assert res.stdout.strip() == str(MONALISA), res.stdout + res.stderr
        yield server
        proc.terminate()
        proc.wait(timeout=10)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A status directory the remote login (same user) can read."""
    d = Path(tempfile.mkdtemp(prefix="ml-status-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


NO_PROBE = SystemProbe(temp_path=Path("/nonexistent"), vcgencmd="")


def status(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "version": "0.1.0",
        "pid": os.getpid(),
        "uptime_s": 120.0,
        "camera": {"state": "running", "fps": 30.0, "failures": 0},
        "loop_fps": 29.7,
        "gaze_state": "tracking",
        "viewers_last_minute": 1,
        "last_viewer_age_s": 0.0,
        "cpu_temp_c": 51.0,
    }
    base.update(over)
    return base


def test_health_over_ssh_fresh_then_stale(sshd, shared_dir):
    """A status whose writer is alive (this test's pid) but 30 s old is CRITICAL for staleness."""
    p = shared_dir / "status.json"
    StatusWriter(p, probe=NO_PROBE).write_dict(status())
    res = sshd.health(p)
    assert res.returncode == OK, res.stdout + res.stderr
    assert res.stdout.startswith("MONALISA OK - tracking, 29.7 fps, camera running, 51.0°C")
    StatusWriter(p, probe=NO_PROBE, clock=lambda: time.time() - 30).write_dict(status())
    res = sshd.health(p)
    assert res.returncode == CRITICAL
    assert re.match(r"MONALISA CRITICAL - status is 3\d s old \(stale after 5 s\)", res.stdout)


def test_health_over_ssh_missing_warning_and_json(sshd, shared_dir):
    res = sshd.health(shared_dir / "nothing.json")
    assert res.returncode == CRITICAL
    assert "no status file" in res.stdout
    p = shared_dir / "status.json"
    StatusWriter(p, probe=NO_PROBE).write_dict(status(cpu_temp_c=79.5))
    res = sshd.health(p, "--json")
    assert res.returncode == 1
    doc = json.loads(res.stdout)
    assert doc["state"] == "WARNING"
    assert {c["name"]: c["state"] for c in doc["checks"]}["temperature"] == "WARNING"


def test_health_over_ssh_during_and_after_a_replay_run(sshd, shared_dir):
    clip = write_astronaut_clip(shared_dir / "clip")
    p = shared_dir / "status.json"
    env = app_env()
    rest = ("--replay-speed", "realtime", "--status-file", str(p), "--duration", "60")
    proc = subprocess.Popen(
        [str(MONALISA), "run", "--camera", f"replay:{clip}", "--display", "headless", *rest],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            res = sshd.health(p)
            if res.returncode == OK and "camera running" in res.stdout:
                break
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, res.stdout
            time.sleep(0.5)
        assert res.stdout.startswith("MONALISA OK - ")
        pid = json.loads(p.read_text())["pid"]
        assert pid == proc.pid

        # A hung appliance: the process is alive (stopped) but no longer writes its status, so
        # the status goes stale after stale_after_s (5 s by default) -> CRITICAL for staleness,
        # not for a missing process.
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 60
            while True:
                res = sshd.health(p)
                if res.returncode != OK:
                    break
                assert time.monotonic() < deadline, res.stdout
                time.sleep(0.5)
            assert proc.poll() is None  # still there, only stopped
            assert res.returncode == CRITICAL, res.stdout + res.stderr
            assert re.match(
                r"MONALISA CRITICAL - status is \d+ s old \(stale after \S+ s\): not running",
                res.stdout,
            ), res.stdout
        finally:
            os.kill(proc.pid, signal.SIGCONT)

        # Resumed, it writes again and is healthy again.
        deadline = time.monotonic() + 60
        while True:
            res = sshd.health(p)
            if res.returncode == OK:
                break
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, res.stdout
            time.sleep(0.5)

        # Stopped for good: the last status stays, and names the process that is gone.
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        res = sshd.health(p)
        assert res.returncode == CRITICAL, res.stdout
        assert res.stdout.startswith(f"MONALISA CRITICAL - monalisa (pid {pid}) is not running")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.communicate(timeout=10)
