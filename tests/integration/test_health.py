"""/healthz and /readyz on metrics.listen, next to /metrics: what they answer while the router
starts, runs and drains, and that the endpoint is bounded (request size, connections).

/healthz: 200 "ok" while every loop (network threads, forwarding tick and housekeeping, spool
commits) makes progress, 503 with the stuck loop otherwise (the unit tests stall a loop; a live
router cannot be made to hang on purpose). /readyz: 200 "ready" once the spool is recovered, the
queues are rebuilt, rules are in force and the listener is open; 503 with the reason before
that and while stopping. A rules file that is broken at startup stops the router (exit 2, as
before): it never becomes ready on no rules."""
from __future__ import annotations

import signal
import socket
import time
import urllib.error
import urllib.request

import pytest

import dicom_ul as ul
from conftest import HOST, Conduit, wait_until


def http(conduit: Conduit, path: str, method: str = "GET") -> tuple[int, dict, bytes]:
    request = urllib.request.Request(f"http://{HOST}:{conduit.metrics_port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as rsp:
            return rsp.status, dict(rsp.headers), rsp.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def raw_http(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Sends `request` as is and reads until the server closes."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


def test_healthz_and_readyz_answer_ok_on_a_running_router(conduit):
    status, headers, body = http(conduit, "/healthz")
    assert (status, body) == (200, b"ok\n")
    assert headers["Content-Type"].startswith("text/plain")
    assert http(conduit, "/readyz")[::2] == (200, b"ready\n")
    # /metrics is served by the same endpoint, in the Prometheus text format.
    status, headers, body = http(conduit, "/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert b"# TYPE conduit_config_reloads_total counter" in body


def test_other_paths_and_methods_are_refused(conduit):
    status, _, body = http(conduit, "/nothing-here")
    assert status == 404 and b"/healthz" in body, body
    status, headers, _ = http(conduit, "/healthz", method="POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    status, headers, body = http(conduit, "/readyz", method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Length"] == "6"
    assert http(conduit, "/healthz?verbose=1")[0] == 200, "a query string is ignored"


def test_the_endpoint_is_bounded(conduit):
    # A request head larger than 8 KiB is answered 431 and closed, not buffered without end.
    answer = raw_http(conduit.metrics_port,
                      b"GET /healthz HTTP/1.1\r\nX-Junk: " + b"a" * 20000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert raw_http(conduit.metrics_port, b"BREW /pot HTCPCP/1.0\r\n\r\n").startswith(
        b"HTTP/1.1 400 ")

    # At most 16 connections at once: while 16 idle ones hold their slots, the next waits in
    # the backlog and is served as soon as one of them goes.
    idle = [socket.create_connection((HOST, conduit.metrics_port), timeout=5) for _ in range(16)]
    try:
        waiting = socket.create_connection((HOST, conduit.metrics_port), timeout=1)
        waiting.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
        with pytest.raises(socket.timeout):
            waiting.recv(1024)
        idle.pop().close()
        waiting.settimeout(5)
        assert waiting.recv(1024).startswith(b"HTTP/1.1 200 OK\r\n")
        waiting.close()
    finally:
        for s in idle:
            s.close()


def test_readyz_says_stopping_while_associations_drain(conduit):
    association = conduit.associate(calling_ae="DRAINSCU")
    try:
        conduit.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: http(conduit, "/readyz")[0] == 503, 5, what="/readyz to turn 503")
        status, _, body = http(conduit, "/readyz")
        assert status == 503 and body.startswith(b"stopping"), body
        # Stopping is not being stuck.
        assert http(conduit, "/healthz")[::2] == (200, b"ok\n")
        # The open association is served to its end.
        assert association.echo() == 0
        association.release()
    finally:
        association.conn.close()
    assert conduit.proc.wait(timeout=20) == 0
    conduit.stopped = True


def test_readyz_is_503_with_a_reason_until_the_router_is_ready(tmp_path):
    # Polled from the moment the process starts: whatever answers come before "ready" (startup
    # is quick here, so there may be none) are 503s that say what is still starting.
    c = Conduit(tmp_path / "c")
    answers: list[tuple[int, bytes]] = []
    c.start(wait=False)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                status, _, body = http(c, "/readyz")
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.005)  # the endpoint is not open yet
                continue
            answers.append((status, body))
            if status == 200:
                break
        assert answers and answers[-1] == (200, b"ready\n"), answers[-5:]
        for status, body in answers[:-1]:
            assert status == 503 and body.startswith(b"starting: "), (status, body)
        # Ready means the DICOM listener answers.
        ul.Association.open(HOST, c.port, calling_ae="READYSCU", called_ae="CONDUIT").release()
    finally:
        c.teardown()


def test_a_broken_rules_file_at_startup_never_becomes_ready(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - name: x\n    route: [NOWHERE]\n")
    c = Conduit(tmp_path / "c", {"rules": {"file": str(rules)}})
    c.start(wait=False)
    assert c.proc.wait(timeout=20) == 2
    c.stopped = True
    assert "rules.yaml:4:" in c.log()


def test_metrics_disabled_turns_the_health_endpoints_off_too(start_conduit):
    c = start_conduit({"metrics": {"enabled": False}})
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        http(c, "/healthz")
