"""Soak: the real appliance on a looping replay clip for hours of frames, watched from outside.

``monalisa run`` is started as its own process (as systemd starts it): replay camera at
``--replay-speed max`` on a clip that loops (``loop = true`` in its ``clip.toml``), BlazeFace, gaze,
the real frame set and the headless display. Its ``--trace`` goes into a named pipe that this
script reads, so hundreds of thousands of trace lines cost no disk and every frame's per-stage
milliseconds are seen. Every ``--every`` frames it samples the process from ``/proc/PID``: resident
memory (VmRSS), open file descriptors and threads. At the end it prints a table, the verdicts and
writes a PNG plot (and a JSON of the samples).

Targets (issue 9): RSS growth under 2 MiB after warm-up, no fd or thread growth (a level held
by two samples in a row), p99 frame time stable (the median of the windows' p99s over the later
half after warm-up within 1.5× of that over the earlier half).

    python benchmarks/soak.py --frames 500000            # make soak
    python benchmarks/soak.py --frames 20000 --every 1000 --warmup 5000   # the short version

Fault mode (``make soak-hang``, issue 22): ``--hang-every 180 --hang-for 10`` makes the camera's
read block in a real ``read(2)`` for 10 s every 3 minutes (``MONALISA_FAULT=camera_hang_every``);
the appliance must abandon each hung read and go on with a fresh source, and the verdicts add
"every camera hang recovered" (from its log: each hang followed by "delivering frames again").
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.support
MIB = 1024.0 * 1024.0
RSS_TARGET_MIB = 2.0
P99_RATIO_TARGET = 1.5
STAGES = ("capture", "detect", "gaze", "draw", "latency")


def make_clip(directory: Path, width: int = 320, height: int = 240, fps: float = 15.0) -> Path:
    """Write a small looping clip: a visitor walks in, stands, walks out; an empty room (4.5 s,
    long enough for the gaze to go idle: ``idle_after_s`` is 3 s).

    Args:
        directory: Where to write (created).
        width: Frame width, pixels.
        height: Frame height, pixels.
        fps: Clip rate, frames per second (the clip clock the gaze filter sees).

    Returns:
        ``directory``, holding JPEG frames and a ``clip.toml`` with ``loop = true``.
    """
    from tests.support.sim import CameraGeometry, Renderer, astronaut_photo, render_walk, walk

    geometry = CameraGeometry(width=width, height=height, hfov_deg=66.0)
    poses = walk(geometry, 1.3, fps=fps, speed_mps=0.5, stand_s=2.0, stand_x_m=0.2, leave_s=4.5)
    from tests.support.sim import write_clip

    write_clip(
        directory,
        render_walk(Renderer(astronaut_photo(), geometry, seed=5), poses),
        fps,
        image_format="jpg",
    )
    from appliance.camera import CLIP_FILE, ClipFile

    ClipFile.read(directory / CLIP_FILE).model_copy(update={"loop": True}).write(directory)
    return directory


@dataclass
class Sample:
    """The process and the last window of frames, at one moment.

    Attributes:
        frames: Trace lines (processed camera frames) read so far.
        elapsed_s: Wall seconds since the process started.
        fps: Frames per second over the window since the previous sample.
        rss_mib: Resident set size, MiB (VmRSS).
        fds: Open file descriptors (the least of five reads over 40 ms: a status write or a
            replay image being read holds one for about a millisecond).
        threads: Threads of the process.
        cpu_s: User + system CPU seconds of the process so far.
        p50: Median milliseconds per stage over the window (and ``frame`` = detect+gaze+draw).
        p99: 99th percentile milliseconds per stage over the window.
    """

    frames: int
    elapsed_s: float
    fps: float
    rss_mib: float
    fds: int
    threads: int
    cpu_s: float
    p50: dict[str, float] = field(default_factory=dict)
    p99: dict[str, float] = field(default_factory=dict)


@dataclass
class SoakResult:
    """A whole soak run."""

    frames: int
    wall_s: float
    exit_status: int | None
    warmup_frames: int
    samples: list[Sample]
    seq_gaps: int
    states: dict[str, int]
    stderr_tail: str = ""
    hangs: int = 0
    """Camera hangs injected (fault mode), from the appliance's log."""
    hangs_recovered: int = 0
    """Of those, the ones the camera came back from (frames delivered again) in the process."""
    camera: dict[str, Any] = field(default_factory=dict)
    """The camera part of the appliance's last status (stalls, reopens, stuck reads)."""

    @property
    def after_warmup(self) -> list[Sample]:
        """Samples taken at or after the end of the warm-up."""
        return [s for s in self.samples if s.frames >= self.warmup_frames]

    def growth(self) -> dict[str, float]:
        """RSS (MiB), fd and thread growth from the end of warm-up to the end, and the p99 ratio.

        Returns:
            ``rss_mib``, ``rss_max_mib`` (peak above the warm-up level), ``fds``, ``fds_max``,
            ``threads``, ``threads_max``, ``p99_ratio`` (the median of the windows' p99
            frame times over the second half of the run after warm-up, over that of the first
            half: a frame time that creeps up shows, one window slowed by a busy neighbour
            does not). The fd and thread peaks are sustained peaks: the highest
            level held by two samples in a row (1,000 frames apart in the short soak), so a
            descriptor that one preempted worker held open across a single sample does not
            count, while one that stays open does.
        """
        post = self.after_warmup
        if len(post) < 2:
            return {}
        base, last = post[0], post[-1]
        return {
            "rss_mib": last.rss_mib - base.rss_mib,
            "rss_max_mib": max(s.rss_mib for s in post) - base.rss_mib,
            "fds": float(last.fds - base.fds),
            "fds_max": float(_sustained_peak([s.fds for s in post]) - base.fds),
            "threads": float(last.threads - base.threads),
            "threads_max": float(_sustained_peak([s.threads for s in post]) - base.threads),
            "p99_ratio": _p99_halves_ratio([s.p99["frame"] for s in post]),
        }

    def verdicts(self) -> dict[str, bool]:
        """Whether each target of issue 9 is met (empty when too few samples)."""
        g = self.growth()
        if not g:
            return {}
        hangs = (
            {"every camera hang recovered": self.hangs_recovered == self.hangs > 0}
            if self.hangs
            else {}
        )
        return hangs | {
            f"RSS growth < {RSS_TARGET_MIB:g} MiB after warm-up": g["rss_mib"] < RSS_TARGET_MIB,
            "no fd growth": g["fds"] <= 0 and g["fds_max"] <= 0,
            "no thread growth": g["threads"] <= 0 and g["threads_max"] <= 0,
            f"p99 frame time stable (within {P99_RATIO_TARGET:g}x)": g["p99_ratio"]
            < P99_RATIO_TARGET,
            "trace complete (no missing seq)": self.seq_gaps == 0,
            "clean exit (0)": self.exit_status == 0,
        }


HANG_LINE = "fault injection: the camera read hangs"
RECOVERED_LINE = "is delivering frames again"


def count_hangs(log: str) -> tuple[int, int]:
    """Camera hangs injected and recovered, from the appliance's log.

    A hang counts as recovered when frames came again before the next hang; a hang in progress
    when the run ended (nothing after it in the log but the stop) counts as neither.

    Returns:
        ``(hangs, recovered)``.
    """
    hangs = recovered = 0
    pending = False
    for line in log.splitlines():
        if HANG_LINE in line:
            hangs += 1
            pending = True
        elif RECOVERED_LINE in line and pending:
            recovered += 1
            pending = False
    return hangs - pending, recovered


def _p99_halves_ratio(p99s: list[float]) -> float:
    """Median of the later half of the windows' p99s over the median of the earlier half."""
    half = len(p99s) // 2
    first, second = p99s[:half] or p99s[:1], p99s[len(p99s) - half :] or p99s[-1:]
    return statistics.median(second) / max(statistics.median(first), 1e-9)


def _sustained_peak(levels: list[int]) -> int:
    """The highest level reached by two consecutive samples (the only one if there is one)."""
    if len(levels) < 2:
        return max(levels)
    return max(min(a, b) for a, b in itertools.pairwise(levels))


def _proc_status(pid: int) -> tuple[float, int]:
    rss_kib = 0
    threads = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss_kib = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss_kib / 1024.0, threads


def _proc_fds(pid: int) -> int:
    # A replay image being decoded or a status write holds an fd for about a millisecond; a
    # leaked one stays. The least of five reads over 40 ms tells them apart.
    counts = []
    for _ in range(5):
        counts.append(len(os.listdir(f"/proc/{pid}/fd")))
        time.sleep(0.01)
    return min(counts)


def _proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[k]


def soak(
    frames: int,
    *,
    every: int = 10_000,
    warmup: int = 50_000,
    clip: Path | None = None,
    workdir: Path | None = None,
    config: Path | None = None,
    progress: bool = True,
    timeout_s: float | None = None,
    fault: str = "",
) -> SoakResult:
    """Run the appliance for ``frames`` camera frames and sample it every ``every`` frames.

    Args:
        frames: Camera frames to process before SIGTERM (>= 2 × ``every``).
        every: Frames between two samples.
        warmup: Frames before the growth baseline is taken.
        clip: A looping replay clip (default: one is made in ``workdir``).
        workdir: Where the status file, fifo and clip go (default: a temporary folder).
        config: A config file for the run, or None for the built-in defaults.
        progress: Print each sample as it is taken.
        timeout_s: Give up (SIGTERM, then kill) after this many wall seconds.
        fault: A ``MONALISA_FAULT`` spec for the run (e.g. ``leak_per_frame:2048``), or "".

    Returns:
        The samples and the verdicts' inputs.
    """
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        workdir = workdir.resolve()  # the appliance runs in it: relative paths would break
        workdir.mkdir(parents=True, exist_ok=True)
        clip = make_clip(workdir / "clip") if clip is None else clip.resolve()
        if config is not None:
            config = config.resolve()
        fifo = workdir / "trace.fifo"
        with contextlib.suppress(FileNotFoundError):
            fifo.unlink()
        os.mkfifo(fifo)
        # Held open read-write so the appliance's open() never blocks and we never see EOF
        # before it has started; its exit is noticed through the process instead.
        fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        stack.callback(os.close, fd)
        from tests.support.run import MONALISA, MONALISA_WITH_FAULTS

        cmd = [
            *(MONALISA_WITH_FAULTS if fault else MONALISA),
            "run",
            "--camera",
            f"replay:{clip}",
            "--display",
            "headless",
            "--replay-speed",
            "max",
            "--trace",
            str(fifo),
            "--status-file",
            str(workdir / "status.json"),
        ]
        if config is not None:
            cmd += ["--config", str(config)]
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "MONALISA_FAULT")}
        env["SDL_VIDEODRIVER"] = "dummy"
        if fault:
            env["MONALISA_FAULT"] = fault
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        errlog = (workdir / "stderr.log").open("w+", encoding="utf-8")
        stack.callback(errlog.close)
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=errlog)
        samples: list[Sample] = []
        window: dict[str, list[float]] = {k: [] for k in (*STAGES, "frame")}
        states: dict[str, int] = {}
        count = 0
        expect_seq = 0
        gaps = 0
        buf = b""
        last_sample_t = started
        last_sample_n = 0
        stopping = False

        def take_sample() -> None:
            nonlocal last_sample_t, last_sample_n
            now = time.monotonic()
            try:
                rss, threads = _proc_status(proc.pid)
                fds = _proc_fds(proc.pid)
                cpu = _proc_cpu_s(proc.pid)
            except (FileNotFoundError, ProcessLookupError):
                return
            s = Sample(
                frames=count,
                elapsed_s=now - started,
                fps=(count - last_sample_n) / max(now - last_sample_t, 1e-9),
                rss_mib=rss,
                fds=fds,
                threads=threads,
                cpu_s=cpu,
                p50={k: _percentile(v, 50) for k, v in window.items()},
                p99={k: _percentile(v, 99) for k, v in window.items()},
            )
            samples.append(s)
            for v in window.values():
                v.clear()
            last_sample_t, last_sample_n = now, count
            if progress:
                print(format_row(s), flush=True)

        if progress:
            print(header(), flush=True)
        try:
            while True:
                exited = proc.poll() is not None
                ready, _, _ = select.select([fd], [], [], 0.5)
                chunk = b""
                if ready:
                    try:
                        chunk = os.read(fd, 1 << 16)
                    except BlockingIOError:
                        chunk = b""
                if chunk:
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        if not line:
                            continue
                        row = json.loads(line)
                        if row["seq"] != expect_seq:
                            gaps += 1
                        expect_seq = row["seq"] + 1
                        count += 1
                        ms = row["ms"]
                        for k in STAGES:
                            window[k].append(float(ms.get(k, 0.0)))
                        window["frame"].append(
                            float(ms["detect"]) + float(ms["gaze"]) + float(ms["draw"])
                        )
                        states[row["state"]] = states.get(row["state"], 0) + 1
                        if count % every == 0:
                            take_sample()
                timed_out = timeout_s is not None and time.monotonic() - started > timeout_s
                if (count >= frames or timed_out) and not stopping and not exited:
                    stopping = True  # checked with every chunk: the trace never pauses
                    proc.send_signal(signal.SIGTERM)
                if chunk:
                    continue
                if exited:
                    break
        finally:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        wall = time.monotonic() - started
        errlog.seek(0)
        log = errlog.read()
        tail = "\n".join(log.splitlines()[-20:])
        hangs, recovered = count_hangs(log)
        camera: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError, KeyError):
            camera = json.loads((workdir / "status.json").read_text("utf-8"))["camera"]
        return SoakResult(
            frames=count,
            wall_s=wall,
            exit_status=proc.returncode,
            warmup_frames=warmup,
            samples=samples,
            seq_gaps=gaps,
            states=states,
            stderr_tail=tail,
            hangs=hangs,
            hangs_recovered=recovered,
            camera=camera,
        )


def header() -> str:
    """The table's column titles."""
    return (
        f"{'frames':>8} {'wall s':>7} {'fps':>6} {'RSS MiB':>8} {'fds':>4} {'thr':>4} "
        f"{'cpu s':>7} {'det p50':>7} {'det p99':>7} {'frm p50':>7} {'frm p99':>7} "
        f"{'lat p99':>7}"
    )


def format_row(s: Sample) -> str:
    """One table row (milliseconds for the per-stage columns)."""
    return (
        f"{s.frames:>8} {s.elapsed_s:>7.0f} {s.fps:>6.1f} {s.rss_mib:>8.2f} {s.fds:>4} "
        f"{s.threads:>4} {s.cpu_s:>7.0f} {s.p50['detect']:>7.2f} {s.p99['detect']:>7.2f} "
        f"{s.p50['frame']:>7.2f} {s.p99['frame']:>7.2f} {s.p99['latency']:>7.2f}"
    )


def report(result: SoakResult) -> str:
    """The table, the growth figures and the verdicts as text."""
    lines = [header(), *(format_row(s) for s in result.samples), ""]
    lines.append(
        f"{result.frames} camera frames in {result.wall_s:.0f} s "
        f"({result.frames / max(result.wall_s, 1e-9):.1f} fps overall), exit status "
        f"{result.exit_status}, gaze states "
        + ", ".join(f"{k} {v}" for k, v in sorted(result.states.items()))
    )
    g = result.growth()
    if g:
        lines.append(
            f"after warm-up ({result.warmup_frames} frames): RSS {g['rss_mib']:+.2f} MiB "
            f"(peak {g['rss_max_mib']:+.2f}), fds {g['fds']:+.0f} (peak {g['fds_max']:+.0f}), "
            f"threads {g['threads']:+.0f} (peak {g['threads_max']:+.0f}), "
            f"p99 frame time later/earlier half {g['p99_ratio']:.2f}"
        )
        post = result.after_warmup
        med = statistics.median(s.p99["frame"] for s in post)
        lines.append(f"p99 frame time over the windows after warm-up: median {med:.2f} ms")
    if result.hangs:
        cam = result.camera
        lines.append(
            f"camera hangs injected {result.hangs}, recovered in the process "
            f"{result.hangs_recovered}; last status: stalls {cam.get('stalls')}, reopens "
            f"{cam.get('reopens')}, stuck reads {cam.get('stuck_reads')}"
        )
    for name, ok in result.verdicts().items():
        lines.append(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    return "\n".join(lines)


def plot(result: SoakResult, path: Path) -> None:
    """Save RSS, fds/threads, per-stage p50/p99 and fps against frames as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [s.frames / 1000.0 for s in result.samples]
    fig, axes = plt.subplots(4, 1, figsize=(9, 11), sharex=True)
    ax = axes[0]
    ax.plot(xs, [s.rss_mib for s in result.samples], "o-", ms=3)
    ax.axvline(result.warmup_frames / 1000.0, color="grey", ls=":", label="end of warm-up")
    ax.set_ylabel("RSS, MiB")
    ax.legend(loc="lower right")
    ax = axes[1]
    ax.plot(xs, [s.fds for s in result.samples], "o-", ms=3, label="open fds")
    ax.plot(xs, [s.threads for s in result.samples], "s-", ms=3, label="threads")
    ax.set_ylabel("count")
    ax.legend(loc="lower right")
    ax = axes[2]
    for key, style in (("detect", "-"), ("frame", "-"), ("latency", "--")):
        ax.plot(xs, [s.p50[key] for s in result.samples], style, label=f"{key} p50")
        ax.plot(xs, [s.p99[key] for s in result.samples], style, label=f"{key} p99", alpha=0.6)
    ax.set_ylabel("ms per window")
    ax.legend(loc="upper right", fontsize=7, ncol=3)
    ax = axes[3]
    ax.plot(xs, [s.fps for s in result.samples], "o-", ms=3)
    ax.set_ylabel("camera frames/s")
    ax.set_xlabel("thousand camera frames (replay at max speed)")
    step = result.samples[1].frames - result.samples[0].frames
    fig.suptitle(
        f"monalisa soak: {result.frames} frames in {result.wall_s / 60:.1f} min "
        f"(a sample every {step} frames)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Command line: run, print the table and verdicts, save the plot and the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--frames", type=int, default=500_000, help="camera frames to process")
    p.add_argument("--every", type=int, default=10_000, help="frames between samples")
    p.add_argument("--warmup", type=int, default=50_000, help="frames before the baseline")
    p.add_argument("--clip", type=Path, help="a replay clip with loop = true (default: made)")
    p.add_argument("--config", type=Path, help="config file for the run")
    p.add_argument("--out", type=Path, default=Path("out/soak"), help="folder for results")
    p.add_argument("--timeout", type=float, help="stop after this many wall seconds")
    p.add_argument("--fault", default="", help="MONALISA_FAULT spec, e.g. leak_per_frame:2048")
    p.add_argument(
        "--hang-every", type=float, help="fault mode: hang the camera's read every S seconds"
    )
    p.add_argument("--hang-for", type=float, default=10.0, help="each hang lasts S seconds")
    args = p.parse_args(argv)
    if args.frames < 2 * args.every:
        p.error("--frames must be at least twice --every")
    if args.hang_every:
        hang = f"camera_hang_every:{args.hang_every:g}:{args.hang_for:g}"
        args.fault = f"{args.fault},{hang}" if args.fault else hang
    args.out.mkdir(parents=True, exist_ok=True)
    result = soak(
        args.frames,
        every=args.every,
        warmup=args.warmup,
        clip=args.clip,
        workdir=args.out / "work",
        config=args.config,
        timeout_s=args.timeout,
        fault=args.fault,
    )
    text = report(result)
    print()
    print(text)
    (args.out / "soak.txt").write_text(text + "\n", encoding="utf-8")
    data: dict[str, Any] = asdict(result)
    data["growth"] = result.growth()
    data["verdicts"] = result.verdicts()
    (args.out / "soak.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    if len(result.samples) >= 2:
        plot(result, args.out / "soak.png")
        print(f"plot: {args.out / 'soak.png'}")
    if result.exit_status != 0:
        print(f"the appliance exited with status {result.exit_status}:\n{result.stderr_tail}")
    verdicts = result.verdicts()
    return 0 if verdicts and all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
