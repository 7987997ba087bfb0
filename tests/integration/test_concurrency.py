"""Eight storescu associations at once: every instance stored once, intact, nothing left over."""

import collections
import subprocess

import pydicom

from conftest import HOST, dcmtk_env, kill_process, make_instance, make_uid, read_part10

SENDERS = 8
PER_SENDER = 25


def test_eight_concurrent_storescu(conduit, tmp_path):
    sources = {}  # SOP Instance UID -> (calling AE, source file)
    batches = []
    for s in range(SENDERS):
        d = tmp_path / f"batch{s}"
        d.mkdir()
        files = []
        for i in range(PER_SENDER):
            uid = make_uid(3, s, i)
            f = make_instance(d / f"{i}.dcm", sop_instance_uid=uid, pixel_bytes=8192,
                              seed=s * 1000 + i)
            sources[uid] = (f"SCU{s}", f)
            files.append(f)
        batches.append((f"SCU{s}", files))

    procs = []
    try:
        for aet, files in batches:
            cmd = ["storescu", "-v", "-aet", aet, "-aec", conduit.ae_title, HOST,
                   str(conduit.port), *map(str, files)]
            procs.append(subprocess.Popen(cmd, env=dcmtk_env(), stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
        results = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            kill_process(p)

    for (aet, _), p, (_, err) in zip(batches, procs, results):
        assert p.returncode == 0, f"{aet}: storescu failed:\n{err[-3000:]}"
        assert err.count("Received Store Response (Success)") == PER_SENDER, err[-3000:]

    stored = conduit.instances()
    assert conduit.parts() == []
    uids = collections.Counter()
    associations = collections.defaultdict(set)
    for f in stored:
        p = read_part10(f)
        uid = p.meta_str(0x0003)
        uids[uid] += 1
        assert uid in sources, f"{f.name}: unexpected SOP Instance UID {uid}"
        aet, src = sources[uid]
        # Metadata must not leak between concurrent associations.
        assert p.meta_str(0x0016) == aet, f"{uid}: source AE {p.meta_str(0x0016)}, sent by {aet}"
        associations[aet].add(p.private_information()["association_id"])
        ds = pydicom.dcmread(str(f))
        want = pydicom.dcmread(str(src))
        assert ds.SOPInstanceUID == uid
        assert ds.PixelData == want.PixelData, f"{uid}: pixel data differs from the source"
    duplicates = {u: n for u, n in uids.items() if n > 1}
    assert not duplicates, f"stored more than once: {duplicates}"
    assert set(uids) == set(sources), f"missing: {sorted(set(sources) - set(uids))[:5]}"
    assert len(stored) == SENDERS * PER_SENDER
    # One association id per sender, none shared.
    assert all(len(ids) == 1 for ids in associations.values()), associations
    assert len({next(iter(ids)) for ids in associations.values()}) == SENDERS
