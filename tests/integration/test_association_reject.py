"""A-ASSOCIATE-RJ: each reason, checked on the raw bytes of the reply (PS3.8 9.3.4)."""

import contextlib
import struct
import time

import pytest

import dicom_ul as ul
from conftest import HOST, run_echoscu

ECHO_CONTEXT = [(1, ul.VERIFICATION_SOP_CLASS, [ul.IMPLICIT_VR_LE])]


def raw_reply(conduit, source=None, **rq) -> ul.Pdu:
    rq.setdefault("called_ae", conduit.ae_title)
    rq.setdefault("contexts", ECHO_CONTEXT)
    with ul.Connection(HOST, conduit.port, timeout=10, source=source) as conn:
        conn.send(ul.associate_rq(**rq))
        return conn.read_pdu()


def assert_rj(reply: ul.Pdu, result: int, source: int, reason: int) -> None:
    assert reply.type == ul.A_ASSOCIATE_RJ, f"expected A-ASSOCIATE-RJ, got {reply!r}"
    # PS3.8 Table 9-21: reserved, result, source, reason/diag.; PDU length is always 4.
    assert len(reply.body) == 4, reply
    assert reply.body == struct.pack(">BBBB", 0, result, source, reason), (
        f"RJ body {reply.body.hex()} != result {result} source {source} reason {reason}")


def assert_ac(reply: ul.Pdu) -> None:
    assert reply.type == ul.A_ASSOCIATE_AC, f"expected A-ASSOCIATE-AC, got {reply!r}"


def test_calling_ae_not_allowed(start_conduit):
    c = start_conduit({"listener": {"allowed_calling_aes": ["GOODSCU", "OTHERSCU"]}})
    assert_rj(raw_reply(c, calling_ae="BADSCU"), 1, 1, 3)
    assert_ac(raw_reply(c, calling_ae="GOODSCU"))
    assert_ac(raw_reply(c, calling_ae="OTHERSCU"))


def test_echoscu_with_wrong_calling_ae_fails(start_conduit):
    c = start_conduit({"listener": {"allowed_calling_aes": ["GOODSCU"]}})
    bad = run_echoscu(c.port, aet="BADSCU")
    assert bad.returncode != 0
    assert "Rejected" in bad.stderr or "reject" in bad.stderr.lower(), bad.stderr
    good = run_echoscu(c.port, aet="GOODSCU")
    assert good.returncode == 0, good.stderr


def test_called_ae_mismatch(conduit):
    assert_rj(raw_reply(conduit, called_ae="NOTCONDUIT"), 1, 1, 7)
    assert_ac(raw_reply(conduit, called_ae=conduit.ae_title))
    bad = run_echoscu(conduit.port, aec="NOTCONDUIT")
    assert bad.returncode != 0


def test_called_ae_not_required(start_conduit):
    c = start_conduit({"listener": {"require_called_ae": False}})
    assert_ac(raw_reply(c, called_ae="WHATEVER"))


def test_source_network_not_allowed(start_conduit):
    c = start_conduit({"listener": {"allowed_networks": ["10.0.0.0/8", "192.168.0.0/16"]}})
    assert_rj(raw_reply(c), 1, 1, 1)


def test_source_network_allowed(start_conduit):
    # 127.0.0.1 is inside, 127.0.0.2 is not: the check uses the real peer address.
    c = start_conduit({"listener": {"allowed_networks": ["127.0.0.1/32"]}})
    assert_ac(raw_reply(c, source="127.0.0.1"))
    assert_rj(raw_reply(c, source="127.0.0.2"), 1, 1, 1)


def test_unsupported_application_context(conduit):
    assert_rj(raw_reply(conduit, application_context="1.2.3.4.5.6"), 1, 1, 2)


def test_too_many_associations_in_total(start_conduit):
    c = start_conduit({"listener": {"max_associations": 2, "max_associations_per_peer": 2}})
    with contextlib.ExitStack() as held:
        # Two peers (different loopback source addresses) use up the total limit.
        for src in ("127.0.0.2", "127.0.0.3"):
            a = _open_when_free(c, src)
            held.callback(a.close)
            assert a.echo(1) == 0
        assert_rj(raw_reply(c, source="127.0.0.4"), 2, 3, 2)
        assert run_echoscu(c.port).returncode != 0
    # Once they are gone (closed without release), there is room again.
    _wait_accepts(c)


def test_too_many_associations_per_peer(start_conduit):
    c = start_conduit({"listener": {"max_associations": 64, "max_associations_per_peer": 1}})
    a = _open_when_free(c, "127.0.0.2")
    try:
        assert_rj(raw_reply(c, source="127.0.0.2"), 2, 3, 2)
        assert_ac(raw_reply(c, source="127.0.0.3"))  # another peer is not affected
    finally:
        a.release()
    _wait_accepts(c, source="127.0.0.2")


def _open_when_free(c, source):
    # The readiness probe's association may still be winding down for a moment.
    deadline = time.monotonic() + 10
    while True:
        try:
            return c.associate(source=source, contexts=ECHO_CONTEXT)
        except ul.Rejected:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _wait_accepts(c, source=None):
    deadline = time.monotonic() + 10
    while True:
        reply = raw_reply(c, source=source)
        if reply.type == ul.A_ASSOCIATE_AC:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"association slots not freed after the peers left: {reply!r}")
        time.sleep(0.1)
