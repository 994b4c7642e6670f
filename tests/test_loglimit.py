"""appliance.loglimit: a repeating problem logged once, then at most once per interval."""

from __future__ import annotations

import logging
import re

from appliance.loglimit import LogLimiter


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_log_limiter_logs_once_then_summarises(caplog):
    clock = FakeClock()
    lim = LogLimiter(logging.getLogger("monalisa.test"), interval_s=60.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="monalisa.test"):
        for _ in range(30 * 59):  # a bad frame at 30 fps for 59 s
            lim.log("camera", logging.ERROR, "bad frame: %s", "shape (1, 1)")
            clock.t += 1 / 30
        assert [r.getMessage() for r in caplog.records] == ["bad frame: shape (1, 1)"]
        clock.t += 2
        assert lim.log("camera", logging.ERROR, "bad frame: %s", "shape (1, 1)")
        assert lim.warning("other", "another problem")  # keys are independent
        assert lim.active("camera")
        assert lim.resolved("camera", "camera recovered")
        assert not lim.resolved("camera", "camera recovered")  # only once
        assert not lim.active("camera")
    msgs = [r.getMessage() for r in caplog.records]
    assert re.fullmatch(r"bad frame: shape \(1, 1\) \(1769 more in the last 61 s\)", msgs[1])
    assert msgs[2] == "another problem"
    assert re.fullmatch(r"camera recovered \(after 61 s\)", msgs[3])
    assert [r.levelno for r in caplog.records] == [
        logging.ERROR,
        logging.ERROR,
        logging.WARNING,
        logging.INFO,
    ]


def test_rate_limited_log_suppresses_repeats(caplog):
    log = LogLimiter(logging.getLogger("t"), interval_s=60)
    with caplog.at_level(logging.WARNING, logger="t"):
        for _ in range(100):
            log.warning("k", "same problem")
        log.warning("other", "another problem")
    assert [r.getMessage() for r in caplog.records] == ["same problem", "another problem"]


def test_repeats_can_go_to_a_lower_level_and_a_forgotten_key_logs_at_once(caplog):
    clock = FakeClock()
    lim = LogLimiter(logging.getLogger("t"), interval_s=60.0, clock=clock, repeats_at=logging.DEBUG)
    with caplog.at_level(logging.DEBUG, logger="t"):
        lim.warning("camera", "camera: %s", "gone")
        clock.t += 1
        lim.warning("camera", "camera: %s", "gone")
        lim.forget("camera")  # a new failure episode
        clock.t += 1
        lim.warning("camera", "camera: %s", "back and gone again")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "camera: gone"),
        (logging.DEBUG, "camera: gone"),
        (logging.WARNING, "camera: back and gone again"),
    ]
    assert not any(re.search(r"more in the last", r.getMessage()) for r in caplog.records)
