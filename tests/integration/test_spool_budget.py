"""Spool budget: past spool.max_bytes (or under spool.min_free_bytes of free disk) C-STORE
answers 0xA700 and new associations are rejected transient (result 2, source 3, reason 1)."""

import pytest

import dicom_ul as ul
from conftest import (encode_dataset, make_instance, make_uid, parse_metrics, read_part10,
                      run_echoscu, run_storescu, small_dataset)

SC = ul.SECONDARY_CAPTURE_STORAGE
MAX_BYTES = 1 << 20  # 1 MiB
INSTANCE_PIXEL_BYTES = 200 * 1024


def test_max_bytes_answers_a700_then_rejects(start_conduit):
    c = start_conduit({"spool": {"max_bytes": "1MiB"}})
    a = c.associate(calling_ae="BUDGETSCU", contexts=[(1, SC, [ul.EXPLICIT_VR_LE])])
    statuses, uids = [], []
    try:
        a.accepted_context(1)
        for n in range(12):
            uid = make_uid(8, n)
            data = encode_dataset(small_dataset(uid, pixel_bytes=INSTANCE_PIXEL_BYTES), implicit=False)
            statuses.append(a.store(1, SC, uid, data))
            uids.append(uid)
        a.release()
    finally:
        a.close()

    ok = [u for u, s in zip(uids, statuses) if s == 0x0000]
    shown = [hex(s) for s in statuses]
    # 4 x ~200 KiB stay well under 1 MiB: those must all succeed.
    assert statuses[:4] == [0] * 4, shown
    assert 0xA700 in statuses, f"never answered 0xA700 past a 1 MiB budget: {shown}"
    first_full = statuses.index(0xA700)
    # Nothing is released from the spool, so once full it stays full.
    assert all(s == 0xA700 for s in statuses[first_full:]), shown
    assert len(ok) <= MAX_BYTES // (INSTANCE_PIXEL_BYTES) + 2, shown

    # Exactly the acknowledged instances are in the spool; refused ones left no trace.
    stored = {read_part10(f).meta_str(0x0003) for f in c.instances()}
    assert stored == set(ok)
    assert len(c.instances()) == len(ok)
    assert c.parts() == []

    # A new association is refused for temporary congestion.
    with pytest.raises(ul.Rejected) as rj:
        c.associate(calling_ae="BUDGETSCU", contexts=[(1, SC, [ul.EXPLICIT_VR_LE])]).close()
    assert (rj.value.rj.result, rj.value.rj.source, rj.value.rj.reason) == (2, 3, 1)
    assert run_echoscu(c.port).returncode != 0

    samples = parse_metrics(c.metrics_text())
    a700 = sum(v for n, l, v in samples
               if n == "conduit_cstore_responses_total" and l.get("status", "").lower() == "0xa700")
    assert a700 == statuses.count(0xA700)


def test_max_instances_answers_a700(start_conduit):
    c = start_conduit({"spool": {"max_instances": 3}})
    a = c.associate(calling_ae="BUDGETSCU", contexts=[(1, SC, [ul.EXPLICIT_VR_LE])])
    statuses = []
    try:
        a.accepted_context(1)
        for n in range(5):
            uid = make_uid(10, n)
            data = encode_dataset(small_dataset(uid, pixel_bytes=1024), implicit=False)
            statuses.append(a.store(1, SC, uid, data))
        a.release()
    finally:
        a.close()
    assert statuses == [0, 0, 0, 0xA700, 0xA700], [hex(s) for s in statuses]
    assert len(c.instances()) == 3


def test_storescu_sees_a700(start_conduit, tmp_path):
    c = start_conduit({"spool": {"max_bytes": "1MiB"}})
    files = [make_instance(tmp_path / f"{i}.dcm", sop_instance_uid=make_uid(9, i),
                           pixel_bytes=INSTANCE_PIXEL_BYTES, seed=i) for i in range(10)]
    res = run_storescu(c.port, files, "-v", "-nh")
    assert "Received Store Response (Success)" in res.stderr, res.stderr[-3000:]
    # DCMTK names 0xA700 "Refused: OutOfResources" (or "Out of resources").
    assert "outofresources" in res.stderr.lower().replace(" ", ""), res.stderr[-3000:]
    successes = res.stderr.count("Received Store Response (Success)")
    assert len(c.instances()) == successes
    assert c.parts() == []


def test_min_free_bytes_rejects_new_associations(start_conduit):
    # No disk has an exabyte free: every association is refused for temporary congestion.
    c = start_conduit({"spool": {"min_free_bytes": "1000000TiB"}})
    with pytest.raises(ul.Rejected) as rj:
        c.associate(contexts=[(1, SC, [ul.EXPLICIT_VR_LE])]).close()
    assert (rj.value.rj.result, rj.value.rj.source, rj.value.rj.reason) == (2, 3, 1)
    res = run_echoscu(c.port)
    assert res.returncode != 0
    assert c.instances() == []


def test_budget_counts_what_is_already_spooled_at_start(start_conduit, tmp_path):
    # Fill a spool, restart on it with a budget below what it holds: still full.
    c = start_conduit()
    files = [make_instance(tmp_path / f"{i}.dcm", sop_instance_uid=make_uid(10, i),
                           pixel_bytes=INSTANCE_PIXEL_BYTES, seed=i) for i in range(8)]
    res = run_storescu(c.port, files, "-v")
    assert res.returncode == 0, res.stderr[-3000:]
    assert len(c.instances()) == 8
    assert c.stop() == 0
    c.config["spool"]["max_bytes"] = "1MiB"
    c.write_config()
    c.start()
    with pytest.raises(ul.Rejected) as rj:
        c.associate(contexts=[(1, SC, [ul.EXPLICIT_VR_LE])]).close()
    assert (rj.value.rj.result, rj.value.rj.source, rj.value.rj.reason) == (2, 3, 1)
    assert len(c.instances()) == 8
