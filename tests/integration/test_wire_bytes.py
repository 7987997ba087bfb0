"""The raw client knows exactly which bytes it put on the wire: the spooled dataset must be
those bytes, however the sender cut them into PDVs and PDUs (PS3.8 9.3.5, Annex E)."""

import random

import pytest

import dicom_ul as ul
from conftest import encode_dataset, make_uid, read_part10, small_dataset

SC = ul.SECONDARY_CAPTURE_STORAGE


def send_cut(a: ul.Association, pc_id: int, data: bytes, rng: random.Random, pdvs_per_pdu: int):
    """Data PDVs of random sizes (odd ones too), several per P-DATA-TF, within the peer max."""
    limit = a.ac.max_pdu or 16384
    pos, pdus = 0, []
    while pos < len(data):
        items, room = [], limit
        while pos < len(data) and len(items) < pdvs_per_pdu and room > 6 + 1:
            size = min(rng.randint(1, 3000), len(data) - pos, room - 6)
            chunk = data[pos: pos + size]
            pos += size
            items.append(ul.pdv(pc_id, chunk, command=False, last=pos == len(data)))
            room -= 6 + size
        pdus.append(ul.p_data_tf(*items))
    for p in pdus:
        a.conn.send(p)
    return len(pdus)


@pytest.mark.parametrize("ts", [ul.IMPLICIT_VR_LE, ul.EXPLICIT_VR_LE],
                         ids=["implicit", "explicit"])
@pytest.mark.parametrize("pdvs_per_pdu", [1, 5])
def test_dataset_bytes_are_kept_exactly(conduit, ts, pdvs_per_pdu):
    rng = random.Random(7 + pdvs_per_pdu)
    a = conduit.associate(calling_ae="WIRESCU", contexts=[(1, SC, [ts])], max_pdu=16384)
    sent = {}
    try:
        assert a.accepted_context(1) == ts
        for n in range(3):
            uid = make_uid(14, pdvs_per_pdu, n)
            data = encode_dataset(small_dataset(uid, pixel_bytes=50_000 + 333 * n),
                                  implicit=(ts == ul.IMPLICIT_VR_LE))
            msg_id = a.next_message_id()
            a.send_fragments(1, ul.c_store_rq(SC, uid, msg_id), command=True)
            send_cut(a, 1, data, rng, pdvs_per_pdu)
            rsp = a.read_command()
            assert ul.command_us(rsp, 0x0120) == msg_id
            assert ul.command_ui(rsp, 0x1000) == uid
            assert ul.command_us(rsp, 0x0900) == 0x0000
            sent[uid] = data
        a.release()
    finally:
        a.close()
    stored = {}
    for f in conduit.instances():
        p = read_part10(f)
        stored[p.meta_str(0x0003)] = p
    assert set(stored) == set(sent)
    for uid, data in sent.items():
        assert stored[uid].dataset == data, f"{uid}: stored dataset differs from the wire bytes"
        assert stored[uid].meta_str(0x0010) == ts
        assert stored[uid].meta_str(0x0002) == SC


def test_command_split_over_pdvs(conduit):
    # A command set may itself arrive in several fragments (PS3.8 E.2).
    a = conduit.associate(contexts=[(1, SC, [ul.EXPLICIT_VR_LE])])
    try:
        uid = make_uid(15, 1)
        data = encode_dataset(small_dataset(uid), implicit=False)
        cmd = ul.c_store_rq(SC, uid, 1)
        a.conn.send(ul.p_data_tf(ul.pdv(1, cmd[:11], True, False)))
        a.conn.send(ul.p_data_tf(ul.pdv(1, cmd[11:40], True, False),
                                 ul.pdv(1, cmd[40:], True, True)))
        a.send_fragments(1, data, command=False)
        rsp = a.read_command()
        assert ul.command_us(rsp, 0x0900) == 0
        a.release()
    finally:
        a.close()
    [f] = conduit.instances()
    assert read_part10(f).dataset == data
