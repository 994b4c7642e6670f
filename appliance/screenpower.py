"""The monitor's power while the gallery is closed: HDMI-CEC standby and wake via ``cec-ctl``.

``vcgencmd display_power`` does nothing under KMS (current Raspberry Pi OS), so the monitor
is asked over HDMI-CEC instead, with ``cec-ctl`` from v4l-utils: the Pi's HDMI port claims a
logical address as a playback device (``--playback``) and sends the TV (logical address 0)
``Standby`` or ``Image View On``, as cec-ctl's manual shows::

    cec-ctl -d /dev/cec0 --playback --to 0 --standby
    cec-ctl -d /dev/cec0 --playback --to 0 --image-view-on

Without a ``/dev/cec*`` device or ``cec-ctl``, or when a command fails or times out, the
screen is drawn black instead, and CEC is tried again at the next closing; a monitor that does
not wake is asked again (:mod:`appliance.hours` retries with backoff). One failure never turns
monitor control off for the run. A WARNING says why, at most once an hour per kind of problem.

Every method here can wait up to ``timeout_s`` for ``cec-ctl``: :mod:`appliance.hours` calls
them on its worker thread, never on the render loop.
"""

from __future__ import annotations

import glob
import logging
import shutil
import subprocess
from typing import Literal

from appliance.loglimit import LogLimiter

log = logging.getLogger(__name__)

ClosedLook = Literal["off", "black", "rest"]
"""What the screen shows while closed: monitor in standby, black picture, portrait at rest."""

CEC_TIMEOUT_S = 5.0
"""Longest wait for one cec-ctl command, seconds (a TV that does not answer must not hang)."""

WARN_EVERY_S = 3600.0
"""Least time between two WARNINGs about the same monitor problem, seconds."""


def cec_argv(program: str, device: str, message: str) -> list[str]:
    """The cec-ctl command sending ``message`` (``--standby``, ``--image-view-on``) to the TV.

    ``--playback`` first claims a logical address as a playback device, needed before an
    unconfigured adapter may send; the TV is logical address 0.
    """
    return [program, "-d", device, "--playback", "--to", "0", message]


class ScreenPower:
    """Puts the monitor to sleep on closing and wakes it on opening, as configured.

    Call :meth:`sleep` when the gallery closes and draw what it returns; call :meth:`wake`
    when it opens, and again while it returns False. None raises: a failure is logged and
    the screen goes black instead. Each may wait up to ``timeout_s``: call them off the
    render loop.

    Args:
        mode: ``[schedule] screen``: 'off', 'black' or 'rest'.
        cec_ctl: The cec-ctl program, looked up on PATH.
        devices: Glob of the CEC device nodes; the first, sorted, is used.
        timeout_s: Longest wait for one cec-ctl command, seconds.
    """

    def __init__(
        self,
        mode: ClosedLook,
        *,
        cec_ctl: str = "cec-ctl",
        devices: str = "/dev/cec*",
        timeout_s: float = CEC_TIMEOUT_S,
    ) -> None:
        self.mode: ClosedLook = mode
        self._cec_ctl = cec_ctl
        self._devices = devices
        self._timeout_s = timeout_s
        self._problems = LogLimiter(log, interval_s=WARN_EVERY_S)
        self.asleep = False
        """True while the monitor was put to standby (or may be in it) and not yet woken."""

    def _fall_back(self, why: str) -> ClosedLook:
        self._problems.warning(
            "standby", "screen: %s; while closed the screen is black instead of off", why
        )
        return "black"

    def _cec(self, device: str, message: str) -> str | None:
        """Run cec-ctl sending ``message`` to the TV; None on success, else why it failed."""
        program = shutil.which(self._cec_ctl)
        if program is None:
            return f"{self._cec_ctl} not found (apt install v4l-utils)"
        argv = cec_argv(program, device, message)
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=self._timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            return f"`cec-ctl {message}` on {device} took over {self._timeout_s:g} s"
        except OSError as err:
            return f"cannot run {program}: {err}"
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            detail = f": {lines[-1]}" if lines else ""
            return f"`cec-ctl {message}` on {device} failed (exit {done.returncode}){detail}"
        return None

    def _device(self) -> str | None:
        found = sorted(glob.glob(self._devices))
        return found[0] if found else None

    def sleep(self) -> ClosedLook:
        """The gallery closed: put the monitor to standby if configured and possible.

        Returns:
            What to draw while closed: 'off' (the monitor is in standby; drawing black as
            well costs nothing), 'black', or 'rest' (the portrait at rest).
        """
        if self.mode != "off":
            return self.mode
        device = self._device()
        if device is None:
            return self._fall_back(f"no HDMI-CEC device ({self._devices})")
        why = self._cec(device, "--standby")
        if why is not None:
            return self._fall_back(why)
        self.asleep = True
        log.info("screen: monitor put to standby over HDMI-CEC (%s)", device)
        return "off"

    def wake_at_start(self) -> bool:
        """The appliance starts while open: wake the monitor, in case it is still asleep.

        A run that stopped while closed may have left it in standby. Only in 'off' mode,
        when a CEC device and cec-ctl are present (else nothing is tried and nothing
        logged).

        Returns:
            False if cec-ctl failed (a WARNING is logged; the monitor counts as asleep, so
            :meth:`wake` retries); True otherwise.
        """
        if self.mode != "off":
            return True
        device = self._device()
        if device is None or shutil.which(self._cec_ctl) is None:
            return True
        why = self._cec(device, "--image-view-on")
        if why is not None:
            self.asleep = True
            self._problems.warning("wake", "screen: cannot wake the monitor: %s", why)
            return False
        return True

    def wake(self) -> bool:
        """The gallery opened: wake the monitor if :meth:`sleep` put it to standby.

        Returns:
            False if the monitor is still asleep (cec-ctl failed: a WARNING is logged, and
            calling again retries); True otherwise.
        """
        if not self.asleep:
            return True
        device = self._device()
        why = self._cec(device, "--image-view-on") if device else "the CEC device is gone"
        if why is not None:
            self._problems.warning("wake", "screen: cannot wake the monitor: %s", why)
            return False
        self.asleep = False
        if not self._problems.resolved("wake", "screen: monitor woken over HDMI-CEC (%s)", device):
            log.info("screen: monitor woken over HDMI-CEC (%s)", device)
        return True
