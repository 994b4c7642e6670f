"""Privacy proof: a 60-second run writes nothing but the files it was asked for, and no pixels.

The appliance runs for 60 s of wall time on a real-time replay clip (a visitor walking in,
standing, leaving) under ``strace -f``, which records every file the process tree opens for
writing, creates, renames, links or makes a folder for, and every socket it opens or sends to,
anywhere on the machine (so ``/tmp``, ``/var/tmp``, ``/dev/shm``, ``$HOME`` and the working
folder are all covered, whatever else runs on the machine meanwhile). The private folders it can
see (its working folder, ``$HOME``, ``$TMPDIR``) are also compared before and after.

Allowed: the status file (written as a temporary sibling, then renamed over it), the trace and
the screenshot asked for on the command line, and character devices such as ``/dev/null``.
Then the status file, the log and the trace are searched for anything that looks like image
data: long base64-like runs, image magic numbers, binary bytes, anything large.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from benchmarks.soak import make_clip

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")

RUN_S = 60
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
SYSCALLS = (
    "open,openat,openat2,creat,rename,renameat,renameat2,link,linkat,symlink,symlinkat,"
    "mkdir,mkdirat,truncate,socket,connect,sendto,sendmsg"
)
B64_RUN = re.compile(rb"[A-Za-z0-9+/=]{64,}")
MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"BM", b"GIF8", b"RIFF", b"P6\n")


def tree(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in files + dirs:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


_CALL = re.compile(r"^(\w+)\((.*)\)\s+=\s+(-?\d+|\?)")
_PATH = re.compile(r'"((?:[^"\\]|\\.)*)"')


def parse_strace(text: str) -> list[tuple[str, list[str], str, bool]]:
    """(syscall, quoted paths, raw args, succeeded) per finished call."""
    calls = []
    for line in text.splitlines():
        m = _CALL.match(line)
        if m is None:
            continue
        name, args, result = m.groups()
        calls.append((name, _PATH.findall(args), args, result not in ("-1", "?")))
    return calls


def looks_like_image_data(data: bytes) -> str | None:
    if B64_RUN.search(data):
        return "a base64-like run of 64+ characters"
    for magic in MAGIC:
        if magic in data:
            return f"image magic {magic!r}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes that are not UTF-8 text"
    if any(ord(c) < 32 and c not in "\n\t\r" for c in text):
        return "control characters"
    return None


def longest_string(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return max([0, *(max(len(k), longest_string(v)) for k, v in value.items())])
    if isinstance(value, list):
        return max([0, *(longest_string(v) for v in value)])
    return 0


@pytest.mark.slow
@pytest.mark.system
def test_a_minute_of_running_writes_only_what_was_asked_for(tmp_path):
    clip = make_clip(tmp_path / "clip")
    work, home, tmpdir = tmp_path / "work", tmp_path / "home", tmp_path / "tmpdir"
    for d in (work, home, tmpdir):
        d.mkdir()
    (home / ".profile").write_text("# untouched\n")
    notify_path = Path(f"/tmp/ml-priv-{os.getpid()}.sock")
    notify_path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            try:
                received.append(sock.recv(4096))
            except TimeoutError:
                continue
            except OSError:
                return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()

    status, trace, shot = work / "status.json", work / "trace.jsonl", work / "shot.png"
    private = {"work": work, "home": home, "tmpdir": tmpdir, "clip": clip}
    before = {k: tree(v) for k, v in private.items()}
    env = {k: v for k, v in os.environ.items() if k not in ("MONALISA_FAULT",)}
    env.update(
        HOME=str(home),
        TMPDIR=str(tmpdir),
        SDL_VIDEODRIVER="dummy",
        NOTIFY_SOCKET=str(notify_path),
        WATCHDOG_USEC="2000000",
        PYTHONDONTWRITEBYTECODE="1",  # as the service unit runs it; pip compiled the rest
    )
    strace_dir = tmp_path / "strace"
    strace_dir.mkdir()
    cmd = [
        "strace",
        "-ff",  # one file per thread: no interleaved, unfinished calls
        "-qq",
        "-s",
        "256",
        "-e",
        f"trace={SYSCALLS}",
        "-o",
        str(strace_dir / "trace"),
        sys.executable,
        "-m",
        "appliance.cli",
        "run",
        "--camera",
        f"replay:{clip}",
        "--display",
        "headless",
        "--replay-speed",
        "realtime",
        "--duration",
        str(RUN_S),
        "--status-file",
        str(status),
        "--trace",
        str(trace),
        "--screenshot",
        str(shot),
    ]
    try:
        res = subprocess.run(cmd, cwd=work, env=env, capture_output=True, timeout=RUN_S + 120)
    finally:
        stop.set()
        listener.join(2)
        sock.close()
        notify_path.unlink(missing_ok=True)
    log = res.stderr
    assert res.returncode == 0, log.decode(errors="replace")
    assert any(b"READY=1" in m for m in received)

    # 1. Every write-open, rename, link, mkdir anywhere: only the files asked for.
    allowed = {str(status), str(trace), str(shot)}
    # Atomic writes: a hidden temporary sibling of an asked-for file, renamed over it.
    tmp_sibling = re.compile(
        re.escape(str(work)) + r"/\.(status\.json|shot\.png|trace\.jsonl)(\.[^/]+)?\.tmp$"
    )
    probes = []
    problems = []
    sockets = []
    text = "\n".join(p.read_text(errors="replace") for p in strace_dir.iterdir())
    assert "openat(" in text
    for name, paths, args, ok in parse_strace(text):
        if name in ("socket",):
            family = args.split(",")[0]
            # SDL's udev hot-plug monitor listens to the kernel's device events: not a network.
            if family == "AF_NETLINK" and "NETLINK_KOBJECT_UEVENT" in args:
                continue
            sockets.append(family)
            continue
        if name in ("connect", "sendto", "sendmsg"):
            for p in paths:
                if p.startswith("/") and p != str(notify_path):
                    problems.append(f"{name} to {p}")
            continue
        if name in ("open", "openat", "openat2") and not any(f in args for f in WRITE_FLAGS):
            continue
        if not ok:
            continue
        targets = paths[-1:] if name in ("rename", "renameat", "renameat2") else paths[:1]
        for p in targets:
            full = p if p.startswith("/") else str(work / p)
            if full in allowed or tmp_sibling.match(full):
                continue
            if full.startswith("/dev/") and not full.startswith("/dev/shm"):
                with_stat = os.stat(full) if os.path.exists(full) else None
                if with_stat is None or stat.S_ISCHR(with_stat.st_mode):
                    continue
            if name in ("mkdir", "mkdirat") and full == str(work):
                continue
            if full.startswith(str(tmpdir)) and ("O_TMPFILE" in args or "O_EXCL" in args):
                # detector._load_interpreter catches TFLite's stderr chatter in a
                # tempfile.TemporaryFile: an O_TMPFILE (never linked: no name, gone at close),
                # after Python's gettempdir() probe (a file created and removed at once). One
                # per model loaded: the full-range detector and the short-range follow crop's.
                probes.append(full)
                continue
            problems.append(f"{name} {full}")
    assert not problems, "written outside what was asked for:\n" + "\n".join(sorted(problems))
    assert len(probes) <= 3 and not any(os.path.isfile(p) for p in probes), probes
    assert set(sockets) <= {"AF_UNIX"}, f"sockets other than AF_UNIX: {set(sockets)}"

    # 2. The private folders: only the three files appeared.
    after = {k: tree(v) for k, v in private.items()}
    for k in ("home", "tmpdir", "clip"):
        assert after[k] == before[k], f"{k} changed"
    assert set(after["work"]) - set(before["work"]) == {"status.json", "trace.jsonl", "shot.png"}

    # 3. No image data in the status file, the log or the trace.
    status_bytes = status.read_bytes()
    assert len(status_bytes) < 16 * 1024
    assert looks_like_image_data(status_bytes) is None
    assert longest_string(json.loads(status_bytes)) < 200
    assert looks_like_image_data(log) is None, log[:2000]
    assert len(log) < 8 * 1024 and all(len(ln) < 300 for ln in log.splitlines())
    trace_bytes = trace.read_bytes()
    assert looks_like_image_data(trace_bytes) is None
    rows = [json.loads(line) for line in trace_bytes.decode().splitlines()]
    assert len(rows) > 0.8 * RUN_S * 15  # the clip plays at 15 fps
    assert max(longest_string(r) for r in rows) < 40  # numbers and state names only
    assert max(len(line) for line in trace_bytes.splitlines()) < 2000
    # Only the notify socket was ever sent to, with short text messages.
    assert all(len(m) < 300 and looks_like_image_data(m) is None for m in received)
