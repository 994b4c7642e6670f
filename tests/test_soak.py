"""The short soak: 20,000 camera frames through the real appliance; fails on growth.

The long version is ``make soak`` (benchmarks/soak.py, 500,000 frames). Both start ``monalisa run``
as its own process on a small looping clip (320×240, a visitor walking in, standing, leaving) at
``--replay-speed max`` and read its trace through a named pipe, sampling ``/proc/PID``.

Growth is measured from the end of the warm-up (the first 5,000 frames: lazily built detector
plans, allocator arenas, the gaze state) to the end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.soak import (
    RSS_TARGET_MIB,
    Sample,
    SoakResult,
    count_hangs,
    make_clip,
    report,
    soak,
)

FRAMES = 20_000
EVERY = 1_000
WARMUP = 5_000


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("soak") / "clip")


def test_clip_loops(clip):
    text = (clip / "clip.toml").read_text()
    assert text.startswith("loop = true\n")
    assert len(list(clip.glob("frame_*.jpg"))) > 100


@pytest.mark.slow
@pytest.mark.system
def test_short_soak_has_no_growth(clip, tmp_path):
    result = soak(FRAMES, every=EVERY, warmup=WARMUP, clip=clip, workdir=tmp_path, progress=False)
    text = report(result)
    print(text)
    assert result.exit_status == 0, result.stderr_tail
    assert result.frames >= FRAMES
    assert result.seq_gaps == 0
    # The clip has a visitor and an empty room: every state was reached, many times over.
    assert {"tracking", "idle"} <= set(result.states), result.states
    g = result.growth()
    assert g["rss_mib"] < RSS_TARGET_MIB, text
    assert g["fds"] == 0 and g["fds_max"] == 0, text
    assert g["threads"] == 0 and g["threads_max"] == 0, text
    # Nothing in the log but the start and the stop.
    log = (tmp_path / "stderr.log").read_text()
    noisy = [ln for ln in log.splitlines() if any(w in ln for w in ("WARN", "ERROR", "Traceback"))]
    assert not noisy, log


@pytest.mark.slow
@pytest.mark.system
def test_soak_catches_a_leak(clip, tmp_path):
    """The harness is not blind: 4 KiB kept per frame shows as RSS growth over 3,000 frames."""
    result = soak(
        3_000,
        every=500,
        warmup=1_000,
        clip=clip,
        workdir=tmp_path,
        progress=False,
        fault="leak_per_frame:4096",
    )
    assert result.exit_status == 0, result.stderr_tail
    g = result.growth()
    assert g["rss_mib"] > 6.0, report(result)  # 2,000 frames × 4 KiB ≈ 7.8 MiB
    assert not result.verdicts()[f"RSS growth < {RSS_TARGET_MIB:g} MiB after warm-up"]


def _sample(frames: int, rss: float, fds: int = 10, threads: int = 5, p99: float = 5.0):
    ms = {"detect": 3.0, "frame": p99, "latency": 6.0}
    return Sample(frames, frames / 100, 100.0, rss, fds, threads, 1.0, ms, ms)


def test_verdicts_flag_each_kind_of_growth():
    base = [_sample(n, 100.0) for n in range(1000, 6000, 1000)]
    ok = SoakResult(5000, 50.0, 0, 2000, base, 0, {"idle": 5000})
    assert all(ok.verdicts().values())
    assert ok.growth()["rss_mib"] == 0.0

    def worse(**kw):
        samples = [*base[:-1], _sample(5000, **{"rss": 100.0, **kw})]
        return SoakResult(5000, 50.0, 0, 2000, samples, 0, {}).verdicts()

    assert not worse(rss=103.0)["RSS growth < 2 MiB after warm-up"]
    assert not worse(fds=11)["no fd growth"]

    # One sample that caught a replay image or a status write open (a worker preempted on a
    # loaded machine) is not growth; a descriptor still open at the next sample is.
    def bumped(*at: int) -> dict[str, bool]:
        samples = [_sample(s.frames, 100.0, fds=11 if s.frames in at else 10) for s in base]
        return SoakResult(5000, 50.0, 0, 2000, samples, 0, {}).verdicts()

    assert bumped(3000)["no fd growth"]
    assert not bumped(3000, 4000)["no fd growth"]
    assert not worse(threads=6)["no thread growth"]
    # Frame time is judged by the medians of the halves after warm-up: one window slowed by a
    # busy neighbour passes, a frame time that stays up for the later half does not.
    stable = "p99 frame time stable (within 1.5x)"
    assert worse(p99=9.0)[stable]
    crept = [*base[:-2], _sample(4000, 100.0, p99=9.0), _sample(5000, 100.0, p99=9.0)]
    assert not SoakResult(5000, 50.0, 0, 2000, crept, 0, {}).verdicts()[stable]
    gaps = SoakResult(5000, 50.0, 0, 2000, base, 3, {})
    assert not gaps.verdicts()["trace complete (no missing seq)"]
    # Growth before the end of the warm-up does not count.
    early = [_sample(1000, 80.0), *base[1:]]
    assert SoakResult(5000, 50.0, 0, 2000, early, 0, {}).growth()["rss_mib"] == 0.0


def test_camera_hangs_are_counted_from_the_log_and_judged():
    """The fault mode's verdict: each injected hang followed by frames again before the next;
    a hang still in progress when the run ended counts as neither."""
    hang = "INFO tests.support.faults: fault injection: the camera read hangs for 10 s"
    back = "INFO appliance.camera: camera: replay:/c is delivering frames again"
    stall = "WARNING appliance.camera: camera: replay:/c: no frame for 3.1 s; read abandoned"
    assert count_hangs("\n".join([hang, stall, back, hang, stall, back])) == (2, 2)
    assert count_hangs("\n".join([hang, stall, back, hang, stall, hang, back])) == (3, 2)
    assert count_hangs("\n".join([hang, back, hang])) == (1, 1)  # the run ended in the last
    assert count_hangs("\n".join([back, back])) == (0, 0)
    base = [_sample(n, 100.0) for n in range(1000, 6000, 1000)]

    def verdicts(hangs: int, recovered: int) -> dict[str, bool]:
        return SoakResult(5000, 50.0, 0, 2000, base, 0, {}, "", hangs, recovered).verdicts()

    assert verdicts(10, 10)["every camera hang recovered"]
    assert not verdicts(10, 9)["every camera hang recovered"]
    assert "every camera hang recovered" not in verdicts(0, 0)  # not the fault mode
