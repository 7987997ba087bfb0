"""ARTIM (PS3.8 9.1.5): a connection that never completes an A-ASSOCIATE-RQ is closed after
artim_timeout_seconds, while the router keeps serving others."""

import time

import pytest

import dicom_ul as ul
from conftest import HOST, run_echoscu, running_conduit

ARTIM = 2


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    overrides = {"listener": {"artim_timeout_seconds": ARTIM, "idle_timeout_seconds": 60}}
    with running_conduit(tmp_path_factory.mktemp("artim"), overrides) as c:
        yield c


@pytest.mark.parametrize("prefix", [b"", b"\x01\x00\x00", ul.associate_rq()[:30]],
                         ids=["silent", "half a pdu header", "half an associate-rq"])
def test_artim_closes_stalled_connection(router, prefix):
    with ul.Connection(HOST, router.port, timeout=5) as conn:
        started = time.monotonic()
        if prefix:
            conn.send(prefix)
        # Meanwhile the router keeps serving other peers.
        assert run_echoscu(router.port).returncode == 0
        closed = conn.wait_closed(ARTIM + 13)
        elapsed = time.monotonic() - started
    assert closed, f"connection still open {elapsed:.1f}s after connect (ARTIM {ARTIM}s)"
    # Not closed long before the configured timer (so it was the ARTIM, not something else).
    assert elapsed >= ARTIM * 0.75, f"closed after only {elapsed:.2f}s (ARTIM {ARTIM}s)"
    assert router.alive()
    assert run_echoscu(router.port).returncode == 0


def test_many_silent_connections_all_closed(router):
    conns = [ul.Connection(HOST, router.port, timeout=5) for _ in range(20)]
    try:
        deadline = time.monotonic() + ARTIM + 13
        for c in conns:
            assert c.wait_closed(max(0.1, deadline - time.monotonic())), "a silent connection survived"
    finally:
        for c in conns:
            c.close()
    assert run_echoscu(router.port).returncode == 0
