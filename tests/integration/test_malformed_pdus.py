"""Malformed input on the wire: the router answers A-ABORT (source 2) or closes, never crashes,
and keeps serving (echoscu works afterwards)."""

import random
import socket
import struct

import pytest

import dicom_ul as ul
from conftest import HOST, run_echoscu, running_conduit

MAX_PDU = 16384
SC = ul.SECONDARY_CAPTURE_STORAGE


def _valid_rq(ae="CONDUIT") -> bytes:
    return ul.associate_rq(called_ae=ae, contexts=[(1, ul.VERIFICATION_SOP_CLASS, [ul.IMPLICIT_VR_LE]),
                                                   (3, SC, [ul.EXPLICIT_VR_LE])])


def _rq_with_bad_item_length() -> bytes:
    rq = bytearray(_valid_rq())
    # First presentation context item (0x20) follows the 6-byte header, the 68 fixed bytes and
    # the application context item; make its length run far past the end of the PDU.
    pos = 6 + 68
    assert rq[pos] == 0x10
    pos += 4 + struct.unpack_from(">H", rq, pos + 2)[0]
    assert rq[pos] == 0x20
    struct.pack_into(">H", rq, pos + 2, 0xFFF0)
    return bytes(rq)


def _random(n, seed, first=None) -> bytes:
    data = bytearray(random.Random(seed).randbytes(n))
    if first is not None:
        data[0] = first
    return bytes(data)


# name -> bytes sent before any association
BEFORE_ASSOCIATION = {
    "http request": b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "unknown pdu type": ul.pdu(0x0A, bytes(16)),
    "pdu type zero": ul.pdu(0x00, bytes(16)),
    "random garbage": _random(4096, 1, first=0xFF),
    "associate-rq length 4GiB": ul.pdu(ul.A_ASSOCIATE_RQ, bytes(200), length=0xFFFFFFFF),
    "associate-rq shorter than its fixed fields": ul.pdu(ul.A_ASSOCIATE_RQ, bytes(10)),
    "associate-rq item length past the end": _rq_with_bad_item_length(),
    "p-data before association": ul.p_data_tf(ul.pdv(1, ul.c_echo_rq(), True, True)),
    "release-rq before association": ul.release_rq(),
    "associate-ac sent to the acceptor": ul.pdu(ul.A_ASSOCIATE_AC, _valid_rq()[6:]),
}


def _one_pdv_body(pc_id, control, data, claimed_len):
    return struct.pack(">IBB", claimed_len, pc_id, control) + data


# name -> bytes sent inside an established association (contexts 1: echo, 3: SC storage)
IN_ASSOCIATION = {
    "p-data longer than max pdu": ul.pdu(ul.P_DATA_TF, _random(64 * 1024, 2),
                                         length=4 * MAX_PDU),
    "p-data length 4GiB": ul.pdu(ul.P_DATA_TF, _random(1024, 3), length=0xFFFFFFFF),
    "unknown pdu type": ul.pdu(0x11, bytes(64)),
    "pdv item longer than the pdu": ul.pdu(ul.P_DATA_TF, _one_pdv_body(1, 3, ul.c_echo_rq(), 5000)),
    "pdv item length below 2": ul.pdu(ul.P_DATA_TF, _one_pdv_body(1, 3, b"", 1)),
    "random garbage": _random(2048, 4, first=0xEE),
    "second associate-rq": _valid_rq(),
    "command set garbage": ul.p_data_tf(ul.pdv(1, _random(300, 5), True, True)),
}

# name -> (bytes, then shut down our sending side): the PDU never completes.
TRUNCATED = {
    "truncated associate-rq": _valid_rq()[:40],
    "truncated pdu header": b"\x01\x00\x00",
}


def _expect_abort_or_close(conn: ul.Connection, what: str) -> str:
    try:
        outcome, got = ul.read_abort_or_close(conn, timeout=15)
    except TimeoutError:
        pytest.fail(f"{what}: the router neither aborted nor closed within 15 s")
    assert outcome != "other", f"{what}: expected A-ABORT or close, got {got!r}"
    if outcome == "abort":
        abort = ul.parse_abort(got.body)
        assert len(got.body) == 4, got
        assert abort.source == 2, f"{what}: A-ABORT source {abort.source}, expected 2 (provider)"
        # After an A-ABORT the router must drop the connection too.
        assert conn.wait_closed(15), f"{what}: connection left open after A-ABORT"
    return outcome


def _send(conn, data):
    try:
        conn.send(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the router may hang up before it has read everything: that is allowed


def _still_serving(c):
    assert c.alive(), f"router died:\n{c.log()}"
    res = run_echoscu(c.port)
    assert res.returncode == 0, f"echoscu failed after the bad input:\n{res.stderr}\n{c.log()}"


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    # One router takes every bad input of this module in turn (each test checks it still
    # serves). ARTIM and idle timers are longer than the 15 s we wait: a close must come from
    # the router seeing the bad input, not from a timer that would also close a slow peer.
    overrides = {"listener": {"max_pdu_bytes": MAX_PDU, "artim_timeout_seconds": 30,
                              "idle_timeout_seconds": 60}}
    with running_conduit(tmp_path_factory.mktemp("malformed"), overrides) as c:
        yield c


@pytest.mark.parametrize("name", list(BEFORE_ASSOCIATION))
def test_bad_pdu_before_association(router, name):
    with ul.Connection(HOST, router.port, timeout=15) as conn:
        _send(conn, BEFORE_ASSOCIATION[name])
        _expect_abort_or_close(conn, name)
    _still_serving(router)


@pytest.mark.parametrize("name", list(IN_ASSOCIATION))
def test_bad_pdu_in_association(router, name):
    a = router.associate(contexts=[(1, ul.VERIFICATION_SOP_CLASS, [ul.IMPLICIT_VR_LE]),
                                   (3, SC, [ul.EXPLICIT_VR_LE])], max_pdu=MAX_PDU)
    try:
        assert a.ac.max_pdu == MAX_PDU, f"router advertised {a.ac.max_pdu}, configured {MAX_PDU}"
        assert a.echo(1) == 0
        _send(a.conn, IN_ASSOCIATION[name])
        _expect_abort_or_close(a.conn, name)
    finally:
        a.close()
    _still_serving(router)


@pytest.mark.parametrize("name", list(TRUNCATED))
def test_truncated_pdu_then_eof(router, name):
    with ul.Connection(HOST, router.port, timeout=15) as conn:
        _send(conn, TRUNCATED[name])
        conn.sock.shutdown(socket.SHUT_WR)
        _expect_abort_or_close(conn, name)
    _still_serving(router)


def test_truncated_dataset_then_eof(router):
    # A PDU that promises more than arrives, inside a C-STORE: nothing may be stored.
    a = router.associate(contexts=[(3, SC, [ul.EXPLICIT_VR_LE])], max_pdu=MAX_PDU)
    try:
        a.send_fragments(3, ul.c_store_rq(SC, "1.2.3.4.5.6.7", 1), command=True)
        a.conn.send(ul.pdu(ul.P_DATA_TF, ul.pdv(3, bytes(1000), False, False)[:500],
                           length=1006))
        a.conn.sock.shutdown(socket.SHUT_WR)
        _expect_abort_or_close(a.conn, "truncated p-data")
    finally:
        a.close()
    _still_serving(router)
    assert router.instances() == []  # nothing in this module ever completes a C-STORE
    assert router.parts() == []


def test_all_bad_inputs_in_a_row_on_one_router(router):
    # The same inputs back to back against one process: state from one must not break the next.
    for name, data in BEFORE_ASSOCIATION.items():
        with ul.Connection(HOST, router.port, timeout=15) as conn:
            _send(conn, data)
            _expect_abort_or_close(conn, name)
    for name, data in IN_ASSOCIATION.items():
        a = router.associate(contexts=[(1, ul.VERIFICATION_SOP_CLASS, [ul.IMPLICIT_VR_LE])])
        try:
            _send(a.conn, data)
            _expect_abort_or_close(a.conn, name)
        finally:
            a.close()
    _still_serving(router)
