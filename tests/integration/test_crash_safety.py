"""kill -9 in the middle of a transfer: every instance the sender saw acknowledged is in the
spool, whole, after a restart on the same spool; no .part file survives the restart."""

import collections
import subprocess
import threading

import pydicom

import dicom_ul as ul
from conftest import (HOST, dcmtk_env, encode_dataset, kill_process, make_instance, make_uid,
                      small_dataset, wait_until)

SC = ul.SECONDARY_CAPTURE_STORAGE
COUNT = 300
PIXEL_BYTES = 256 * 1024
KILL_AFTER = 100


def test_kill9_mid_transfer_keeps_acknowledged_instances(conduit, tmp_path):
    src_dir = tmp_path / "src"
    src_dir.mkdir()
    sources = {}  # path -> SOP Instance UID
    for i in range(COUNT):
        uid = make_uid(11, i)
        sources[str(make_instance(src_dir / f"{i:04d}.dcm", sop_instance_uid=uid,
                                  pixel_bytes=PIXEL_BYTES, seed=i))] = uid

    # A second sender stalls half-way through an instance, so that an in-progress .part file
    # certainly exists when the router is killed.
    stalled = conduit.associate(calling_ae="STALLSCU", contexts=[(1, SC, [ul.EXPLICIT_VR_LE])])
    stalled_uid = make_uid(11, 5000)
    data = encode_dataset(small_dataset(stalled_uid, pixel_bytes=PIXEL_BYTES), implicit=False)
    stalled.send_fragments(1, ul.c_store_rq(SC, stalled_uid, 1), command=True)
    stalled.send_fragments(1, data[: len(data) // 2], command=False, last=False)
    wait_until(conduit.parts, 10, what="an incoming/*.part file for the stalled instance")

    cmd = ["storescu", "-v", "-aet", "CRASHSCU", "-aec", conduit.ae_title, HOST,
           str(conduit.port), *sources]
    proc = subprocess.Popen(cmd, env=dcmtk_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    acknowledged, log_lines = [], []
    killed = threading.Event()

    def follow_log():
        current = None
        for line in proc.stderr:
            log_lines.append(line)
            if line.startswith("I: Sending file: "):
                current = line[len("I: Sending file: "):].strip()
            elif "Received Store Response (Success)" in line:
                acknowledged.append(current)
                if len(acknowledged) >= KILL_AFTER and not killed.is_set():
                    conduit.kill9()
                    killed.set()

    reader = threading.Thread(target=follow_log, daemon=True)
    reader.start()
    try:
        assert killed.wait(120), (f"only {len(acknowledged)} acknowledgements seen:\n"
                                  + "".join(log_lines[-30:]))
        proc.wait(timeout=60)  # storescu notices the dead peer and gives up
        reader.join(timeout=10)
    finally:
        kill_process(proc)
        stalled.close()

    assert len(acknowledged) < COUNT, "storescu finished before the kill: nothing was in flight"
    assert None not in acknowledged
    assert len(set(acknowledged)) == len(acknowledged)

    conduit.start()  # same config, same spool, same port
    wait_until(lambda: not conduit.parts(), 10, what="leftover .part files to be cleaned up")

    by_uid = collections.defaultdict(list)
    for f in conduit.instances():
        ds = pydicom.dcmread(str(f))  # every committed file is whole and parses
        by_uid[ds.SOPInstanceUID].append((f, ds))
    assert stalled_uid not in by_uid, "the half-received instance was committed"
    wanted = {sources[p] for p in acknowledged}
    missing = wanted - set(by_uid)
    assert not missing, f"{len(missing)} acknowledged instances lost after kill -9: {sorted(missing)[:5]}"
    duplicates = {u: len(v) for u, v in by_uid.items() if len(v) > 1}
    assert not duplicates, f"instances stored twice: {duplicates}"

    uid_to_path = {u: p for p, u in sources.items()}
    for uid, [(f, ds)] in by_uid.items():
        # Acknowledged or not: anything in instances/ was committed and must be intact.
        assert uid in uid_to_path, f"{f.name}: unknown SOP Instance UID {uid}"
        src = pydicom.dcmread(uid_to_path[uid])
        assert ds.PixelData == src.PixelData, f"{f.name} ({uid}): pixel data differs"
        assert ds.SOPInstanceUID == src.SOPInstanceUID
    assert len(by_uid) <= len(acknowledged) + 2, (
        "more instances committed than acknowledged plus those in flight")

    # And the restarted router works.
    more = make_instance(tmp_path / "after.dcm", sop_instance_uid=make_uid(11, 9999),
                         pixel_bytes=4096, seed=9999)
    res = subprocess.run(["storescu", "-aec", conduit.ae_title, HOST, str(conduit.port),
                          str(more)], env=dcmtk_env(), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert len(conduit.instances()) == len(by_uid) + 1
