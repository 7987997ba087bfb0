"""The systemd service protocol (sd_notify), as systemd would see it: the router runs with
NOTIFY_SOCKET naming a datagram socket this test reads (an abstract one, so no path length
limit), and with WATCHDOG_USEC when a watchdog is wanted.

READY=1 comes once the spool is recovered and the listener accepts; WATCHDOG=1 at half the
interval while the loops make progress; RELOADING=1 then READY=1 around a SIGHUP reload,
whatever its outcome; STOPPING=1 on SIGTERM; STATUS= lines along the way."""
from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest

import dicom_ul as ul
from conftest import HOST, Conduit, wait_until


class NotifySocket:
    """The service manager's end: a thread collects every message the router sends, stamped
    with its arrival time."""

    def __init__(self):
        self.name = f"conduit-test-notify-{os.getpid()}-{time.monotonic_ns()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)
        self.sock.settimeout(0.05)
        self.lock = threading.Lock()
        self.messages: list[tuple[float, str]] = []
        self.running = True
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    @property
    def address(self) -> str:
        return "@" + self.name  # sd_notify's spelling of an abstract socket

    def _read(self) -> None:
        while self.running:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            with self.lock:
                self.messages.append((time.monotonic(), data.decode()))

    def received(self) -> list[tuple[float, str]]:
        with self.lock:
            return list(self.messages)

    def assignments(self) -> list[str]:
        """Every VAR=value line received so far, in order."""
        return [line for _, text in self.received() for line in text.splitlines()]

    def wait_for(self, line: str, after: int = 0, timeout: float = 20.0) -> int:
        """Index (in assignments()) of the first `line` at or after index `after`."""
        def found():
            lines = self.assignments()
            return next((i + 1 for i in range(after, len(lines)) if lines[i] == line), None)
        return wait_until(found, timeout, interval=0.02, what=f"{line!r} from the router") - 1

    def close(self) -> None:
        self.running = False
        self.reader.join(timeout=5)
        self.sock.close()


@pytest.fixture
def notify(monkeypatch):
    n = NotifySocket()
    monkeypatch.setenv("NOTIFY_SOCKET", n.address)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield n
    n.close()


def answers_association(c: Conduit) -> bool:
    try:
        ul.Association.open(HOST, c.port, calling_ae="NOTIFYSCU", called_ae=c.ae_title).release()
        return True
    except (OSError, ul.PeerClosed, TimeoutError, ul.Rejected):
        return False


def test_ready_comes_when_the_listener_accepts_and_stopping_on_sigterm(notify, tmp_path):
    c = Conduit(tmp_path / "c")
    c.start(wait=False)
    try:
        ready = notify.wait_for("READY=1")
        # systemd starts dependent units now: the listener must already take associations.
        assert answers_association(c)
        lines = notify.assignments()
        assert any(line.startswith("STATUS=listening on 127.0.0.1:") for line in lines), lines
        assert "STATUS=recovering the spool" in lines[:ready], "progress is reported on the way"
        assert "WATCHDOG=1" not in lines, "no pings when systemd asked for none"
        c.proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1", after=ready)
        assert c.proc.wait(timeout=20) == 0
        c.stopped = True
    finally:
        c.teardown()


def test_watchdog_pings_at_half_the_interval(notify, monkeypatch, tmp_path):
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # 0.4 s: pings every 0.2 s
    c = Conduit(tmp_path / "c")
    c.start()
    try:
        notify.wait_for("READY=1")
        notify.wait_for("WATCHDOG=1")
        time.sleep(2.0)
        pings = [t for t, text in notify.received() if "WATCHDOG=1" in text.splitlines()]
        assert len(pings) >= 5, f"{len(pings)} pings in 2 s"
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert max(gaps) < 0.4, f"a gap of {max(gaps):.3f} s would let systemd kill the router"
        # It pings while it works.
        assert answers_association(c)
    finally:
        c.teardown()


def test_watchdog_for_another_pid_is_not_ours(notify, monkeypatch, tmp_path):
    # systemd sets WATCHDOG_PID to the main process; a child that inherits the environment
    # (or a wrong PID) must not ping.
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    c = Conduit(tmp_path / "c")
    c.start()
    try:
        notify.wait_for("READY=1")
        time.sleep(1.0)
        assert "WATCHDOG=1" not in notify.assignments()
    finally:
        c.teardown()


def test_sighup_reports_reloading_then_ready_whatever_the_outcome(notify, tmp_path):
    c = Conduit(tmp_path / "c")
    c.start()
    try:
        ready = notify.wait_for("READY=1")
        c.proc.send_signal(signal.SIGHUP)
        reloading = notify.wait_for("RELOADING=1", after=ready + 1)
        again = notify.wait_for("READY=1", after=reloading)
        lines = notify.assignments()
        assert any(line.startswith("MONOTONIC_USEC=") for line in lines[reloading:again])
        assert any(line.startswith("STATUS=reloaded: ") for line in lines[again:]), lines

        # A configuration that fails validation: refused, and systemd still hears READY=1.
        c.config_path.write_text("listener: {prot: 104}\n")
        c.proc.send_signal(signal.SIGHUP)
        reloading = notify.wait_for("RELOADING=1", after=again + 1)
        again = notify.wait_for("READY=1", after=reloading)
        lines = notify.assignments()
        assert any(line.startswith("STATUS=reload refused") for line in lines[again:]), lines
        assert answers_association(c), "the router runs on, with the old configuration"
    finally:
        c.teardown()
