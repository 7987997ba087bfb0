"""Cloud destinations (issue 6): DICOMweb STOW-RS to a real Orthanc 1.10 + DICOMweb plugin,
S3 to a real s3rver, and a folder, each configured as `destinations: [{type: stow|s3|folder}]`
and routed to by name like a DIMSE destination.

What every test holds a delivered object to: a Part 10 file (preamble, DICM, a fresh meta group
without Conduit's private elements (0002,0100)/(0002,0102)) whose dataset bytes are exactly the
dataset bytes storescu sent (the generated files are sent in their own syntax, so that is the
file's own dataset), or a transcode of them when the route names a profile.

Failure handling is checked through StowProxy (dicomweb_peer.py), a loopback proxy in front of
Orthanc that answers 503, 429 + Retry-After, is slow, reports one instance of a request failed
(202 + FailedSOPSequence) or is not there at all, and counts instances per request.

Orthanc is shared by the module (a start/stop costs ~4 s); each test uses its own UIDs. Every
wait is bounded; no wall-clock duration is asserted except a lower bound: a retry after
429 + Retry-After must not come sooner than the server asked.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pydicom
import pytest

from conftest import (StoreScp, make_instance, make_uid, metric_value, parse_metrics,
                      read_part10, run_storescu, wait_until)
from dicomweb_peer import shared_dicomweb, stow_proxy  # noqa: F401  (fixtures)
from dicomweb_peer import join_multipart, part10_meta_uids, split_multipart, Part
from s3_peer import s3_peer  # noqa: F401  (fixture)
from test_corpus import STORESCU_PROPOSE, corpus_by_transfer_syntax
from test_forward_orthanc import generate_study
from test_forwarding import (forking_scp, make_study, queue_cli, route_all_rules, sop_uid,
                             wait_for_metric, wait_spool_empty, write_rules)

FAST_RETRY = {"initial_delay_ms": 100, "max_delay_seconds": 1, "breaker_failures": 2}
DEFAULT_KEY_TEMPLATE = "{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}.dcm"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
CONDUIT_PRIVATE_META = (0x0100, 0x0102)  # Private Information Creator UID, Private Information
SAFE_KEY = re.compile(r"^[A-Za-z0-9._/-]+$")


# ------------------------------------------------------------------------------------------
# helpers


def stow_destination(name: str, url: str, **extra) -> dict:
    d = {"name": name, "type": "stow", "url": url, "parallel_requests": 2,
         "max_instances_per_request": 10, "connect_timeout_seconds": 2,
         "request_timeout_seconds": 30, "retry": dict(FAST_RETRY)}
    d.update(extra)
    return d


def folder_destination(name: str, path: Path, **extra) -> dict:
    d = {"name": name, "type": "folder", "path": str(path), "key_template": DEFAULT_KEY_TEMPLATE,
         "retry": dict(FAST_RETRY)}
    d.update(extra)
    return d


def samples(conduit):
    return parse_metrics(conduit.metrics_text())


def owed(conduit, destination: str) -> float:
    """Instances the destination's queue still owes (every state but dead_letter)."""
    return sum(v for n, l, v in samples(conduit) if n == "conduit_forward_queue_depth"
               and l.get("destination") == destination and l.get("state") != "dead_letter")


def http_responses(conduit, destination: str, code: int) -> float:
    return metric_value(samples(conduit), "conduit_forward_http_responses_total",
                        destination=destination, code=str(code))


def send(conduit, files) -> None:
    # -R -xe: only the files' own SOP classes, Explicit VR LE first: sent as stored, so the
    # dataset bytes conduit spools are the files' own.
    done = run_storescu(conduit.port, files, "-R", "-xe")
    assert done.returncode == 0, done.stderr[-3000:]


def diag(conduit, *extra) -> str:
    lines = [f"{n}{l} {v}" for n, l, v in samples(conduit) if n.startswith("conduit_forward")]
    return "\n".join([*map(str, extra), *lines, conduit.log()[-3000:]])


def assert_delivered_part10(delivered: bytes, sent: Path, what: str, *,
                            transfer_syntax: str | None = None) -> None:
    """`delivered` is a Part 10 file for the instance in `sent`: fresh meta, same dataset
    bytes (or, with `transfer_syntax`, that syntax; the pixels are compared by the caller)."""
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"conduit-cloud-{os.getpid()}.dcm"
    tmp.write_bytes(delivered)
    try:
        got = read_part10(tmp)
    finally:
        tmp.unlink()
    want = read_part10(sent)
    assert got.meta_str(0x0003) == want.meta_str(0x0003), what
    assert got.meta_str(0x0002) == want.meta_str(0x0002), what
    for elem in CONDUIT_PRIVATE_META:
        assert elem not in got.meta, f"{what}: meta group has (0002,{elem:04X}) {got.meta[elem]}"
    assert 0x0001 in got.meta and 0x0012 in got.meta, f"{what}: meta lacks (0002,0001)/(0002,0012)"
    if transfer_syntax is None:
        assert got.meta_str(0x0010) == want.meta_str(0x0010), what
        assert got.dataset == want.dataset, (
            f"{what}: dataset bytes differ ({len(got.dataset)} vs {len(want.dataset)} bytes)")
    else:
        assert got.meta_str(0x0010) == transfer_syntax, what


def pixels(data: bytes | Path):
    import io
    ds = pydicom.dcmread(io.BytesIO(data) if isinstance(data, bytes) else str(data))
    return ds.pixel_array


def gdcm_pixels(path: Path, tmp_path: Path):
    """Pixels as GDCM decodes them (gdcmconv --raw): an independent decoder for JPEG-LS."""
    raw = tmp_path / (path.name + ".raw.dcm")
    done = subprocess.run(["gdcmconv", "--raw", str(path), str(raw)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return pydicom.dcmread(raw).pixel_array


def template_key(path: Path, template: str = DEFAULT_KEY_TEMPLATE) -> str:
    ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    return template.format(StudyInstanceUID=ds.StudyInstanceUID,
                           SeriesInstanceUID=ds.SeriesInstanceUID,
                           SOPInstanceUID=ds.SOPInstanceUID)


def all_files(root: Path) -> set[str]:
    """Every file under `root` (hidden ones too), as paths relative to it."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def safe_key_value(value: str) -> str:
    """The documented rule (router/forward/object_key.h): [A-Za-z0-9._-] kept, anything else
    '_', trailing spaces dropped, "." -> "_", ".." -> "__", empty -> "unknown"."""
    value = value.rstrip(" ")
    out = re.sub(r"[^A-Za-z0-9._-]", "_", value)
    return {"": "unknown", ".": "_", "..": "__"}.get(out, out)


@pytest.fixture
def pacs(shared_dicomweb):  # noqa: F811
    return shared_dicomweb


@pytest.fixture(scope="module")
def ct_study(tmp_path_factory) -> list[Path]:
    """10 generated 512x512 12-bit CT slices (about 513 KiB each), Explicit VR LE."""
    return generate_study(tmp_path_factory.mktemp("ct10"), 10, seed=61)


# ------------------------------------------------------------------------------------------
# the harness itself (no conduit): what the tests below rely on


def _post_stow(url: str, files: list[Path]) -> tuple[int, dict, bytes]:
    import urllib.error
    import urllib.request
    parts = [Part(raw=b"Content-Type: application/dicom\r\n\r\n" + f.read_bytes(),
                  content=f.read_bytes()) for f in files]
    boundary = "conduit-test-boundary-7433"
    req = urllib.request.Request(url + "/studies", data=join_multipart(parts, boundary),
                                 method="POST", headers={
                                     "Content-Type": 'multipart/related; type="application/dicom"'
                                                     f"; boundary={boundary}",
                                     "Accept": "application/dicom+json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as rsp:
            return rsp.status, {k.lower(): v for k, v in rsp.headers.items()}, rsp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def test_harness_orthanc_stow_and_the_proxy_modes(pacs, stow_proxy, tmp_path):  # noqa: F811
    import json
    files = make_study(tmp_path / "h", 3)
    uids = [sop_uid(f) for f in files]
    proxy = stow_proxy(pacs)
    # Multipart round trip of the proxy's own parser.
    body = join_multipart([Part(raw=b"X: y\r\n\r\n" + f.read_bytes(), content=b"")
                           for f in files], "b0")
    assert [part10_meta_uids(p.content)[0] for p in split_multipart(body, "b0")] == uids

    status, headers, answer = _post_stow(proxy.dicomweb_url, files[:1])
    assert status == 200 and headers["content-type"].startswith("application/dicom+json")
    assert json.loads(answer)["00081199"]["Value"][0]["00081155"]["Value"] == [uids[0]]
    # Stored byte for byte as posted (what lets the STOW tests compare dataset bytes).
    assert pacs.instance_file(uids[0]) == files[0].read_bytes()

    proxy.answer(429, retry_after=7, times=1, only_stow=True)
    status, headers, _ = _post_stow(proxy.dicomweb_url, files[1:])
    assert status == 429 and headers["retry-after"] == "7"
    proxy.fail_instance(uids[1])
    status, _, answer = _post_stow(proxy.dicomweb_url, files[1:])
    failed = json.loads(answer)["00081198"]["Value"]
    assert status == 202 and [f["00081155"]["Value"][0] for f in failed] == [uids[1]]
    assert failed[0]["00081197"]["Value"] == [0xA700]
    assert pacs.study_sop_instance_uids(pydicom.dcmread(files[0]).StudyInstanceUID) == {
        uids[0], uids[2]}
    proxy.answer(503)
    assert _post_stow(proxy.dicomweb_url, files[1:2])[0] == 503
    proxy.pass_through()
    assert _post_stow(proxy.dicomweb_url, files[1:2])[0] == 200
    assert uids[1] in pacs.qido_sop_instance_uids()
    assert proxy.sop_counts() == {uids[0]: 1, uids[1]: 4, uids[2]: 2}
    assert proxy.instances_per_request() == [1, 2, 2, 1, 1]
    assert proxy.statuses() == [200, 429, 202, 503, 200]

    # Orthanc itself: a partly failed request is answered 400 (not 202), without Content-Type.
    broken = tmp_path / "broken.dcm"  # Orthanc cannot index an instance without a series
    ds = pydicom.dcmread(str(files[2]))
    ds.SOPInstanceUID = uids[2] + ".9"
    del ds.SeriesInstanceUID
    ds.save_as(str(broken), write_like_original=False)
    status, headers, answer = _post_stow(pacs.dicomweb_url, [broken])
    assert status == 400 and "content-type" not in headers
    assert json.loads(answer)["00081198"]["Value"][0]["00081197"]["Value"] == [0xC000]

    proxy.stop()  # "the server is down": connection refused
    with pytest.raises(OSError):
        _post_stow(proxy.dicomweb_url, files[:1])


def test_harness_s3rver(s3_peer, tmp_path):  # noqa: F811
    s3 = s3_peer()
    f = make_study(tmp_path / "h", 1)[0]

    def curl_put(user: str, key: str) -> str:
        done = subprocess.run(
            ["curl", "-s", "-w", "\n%{http_code}", "--aws-sigv4", "aws:amz:us-east-1:s3",
             "--user", user, "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-T", str(f),
             f"{s3.endpoint}/{s3.bucket}/{key}"], capture_output=True, text=True, timeout=30)
        return done.stdout

    assert curl_put("S3RVER:S3RVER", "a%5Eb/x.dcm").endswith("\n200")
    refused = curl_put("NOSUCHKEY:S3RVER", "a/y.dcm")
    assert refused.endswith("\n403") and "<Code>InvalidAccessKeyId</Code>" in refused
    assert s3.keys() == ["a^b/x.dcm"]
    data, headers = s3.get_with_headers("a^b/x.dcm")
    assert data == f.read_bytes() == s3.object_path("a^b/x.dcm").read_bytes()


# ------------------------------------------------------------------------------------------
# STOW-RS


def test_stow_delivers_a_ct_study_with_identical_datasets_and_pixels(
        pacs, stow_proxy, ct_study, start_conduit, tmp_path):  # noqa: F811
    proxy = stow_proxy(pacs)
    conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "web"))},
                             "destinations": [stow_destination(
                                 "web", proxy.dicomweb_url, max_instances_per_request=4)]})
    send(conduit, ct_study)
    expected = {sop_uid(f): f for f in ct_study}
    study_uid = str(pydicom.dcmread(str(ct_study[0]), stop_before_pixels=True).StudyInstanceUID)
    wait_until(lambda: pacs.study_sop_instance_uids(study_uid) == set(expected)
               and not conduit.instances(), 30, interval=0.1,
               what="every instance in Orthanc (QIDO-RS) and the spool empty")

    for uid, f in expected.items():
        stored = pacs.instance_file(uid)  # Orthanc keeps STOW parts byte for byte
        assert_delivered_part10(stored, f, uid)
        assert (pixels(stored) == pixels(f)).all(), uid
    assert pacs.simplified_tags(next(iter(expected)))["Modality"] == "CT"

    requests = proxy.stow_requests()
    assert all(1 <= len(r.sop_uids) <= 4 for r in requests), proxy.instances_per_request()
    assert proxy.sop_counts() == {u: 1 for u in expected}
    for r in requests:
        ctype = r.headers.get("content-type", "")
        assert ctype.startswith("multipart/related") and "application/dicom" in ctype, ctype
    m = samples(conduit)
    assert metric_value(m, "conduit_forward_delivered_total", destination="web") == len(expected)
    assert metric_value(m, "conduit_forward_dead_lettered_total", destination="web") == 0
    assert metric_value(m, "conduit_forward_http_responses_total", destination="web",
                        code="200") >= len(requests)
    assert owed(conduit, "web") == 0


def test_stow_delivers_the_pydicom_corpus_with_identical_datasets(
        pacs, start_conduit, tmp_path):  # noqa: F811
    """Every corpus file storescu can send, each in its own transfer syntax, reaches Orthanc
    over STOW-RS with the very dataset bytes storescu sent (what a reference storescp got)."""
    groups = corpus_by_transfer_syntax()
    conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "web"))},
                             "destinations": [stow_destination("web", pacs.dicomweb_url)]})
    ref = StoreScp(tmp_path / "ref")
    try:
        for ts, files in sorted(groups.items()):
            args = ["-R", "-nh", STORESCU_PROPOSE[ts]]
            r = run_storescu(ref.port, files, *args, aec="STORESCP")
            g = run_storescu(conduit.port, files, *args)
            assert g.returncode == r.returncode, (ts, g.stderr[-3000:], r.stderr[-3000:])
        # What storescu really sent: it re-serialises some files, and several corpus files
        # share a SOP Instance UID (Orthanc keeps the first copy; a later one is "already
        # stored", HTTP 200).
        sent: dict[str, dict[bytes, str]] = {}  # SOP Instance UID -> dataset -> its syntax
        for f in ref.files():
            p = read_part10(f)
            sent.setdefault(p.meta_str(0x0003), {})[p.dataset] = p.meta_str(0x0010)
    finally:
        ref.stop()
    assert len(sent) >= 100, f"only {len(sent)} distinct instances sent"

    wait_until(lambda: not conduit.instances(), 60, interval=0.2,
               what="every corpus instance delivered and released from the spool")
    assert set(sent) <= pacs.qido_sop_instance_uids()
    for uid, datasets in sorted(sent.items()):
        tmp = tmp_path / "orthanc.dcm"
        tmp.write_bytes(pacs.instance_file(uid))
        stored = read_part10(tmp)
        assert stored.dataset in datasets, f"{uid}: Orthanc's dataset differs from what was sent"
        assert stored.meta_str(0x0010) == datasets[stored.dataset], f"{uid}: transfer syntax"
        assert not any(e in stored.meta for e in CONDUIT_PRIVATE_META), uid
    m = samples(conduit)
    assert metric_value(m, "conduit_forward_dead_lettered_total", destination="web") == 0
    assert owed(conduit, "web") == 0


def test_stow_destination_down_at_first_gets_everything_once_it_is_up(
        pacs, stow_proxy, start_conduit, tmp_path):  # noqa: F811
    proxy = stow_proxy(pacs, start=False)  # its port is chosen; nothing listens yet
    conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "web"))},
                             "destinations": [stow_destination("web", proxy.dicomweb_url)]})
    files = make_study(tmp_path / "study", 6)
    send(conduit, files)
    wait_until(lambda: metric_value(samples(conduit), "conduit_forward_circuit_state",
                                    destination="web") == 1, 15, interval=0.1,
               what="the circuit to open")
    wait_until(lambda: owed(conduit, "web") == 6, 10, interval=0.1, what="6 owed to web")
    assert len(conduit.instances()) == 6
    listing = queue_cli(conduit, "list")
    assert listing.returncode == 0 and "open" in listing.stdout, listing.stdout + listing.stderr

    proxy.start()
    wait_until(lambda: not conduit.instances(), 30, interval=0.1,
               what="the spool to empty once the server is up")
    assert {sop_uid(f) for f in files} <= pacs.sop_instance_uids()
    m = samples(conduit)
    assert metric_value(m, "conduit_forward_delivered_total", destination="web") == 6
    assert metric_value(m, "conduit_forward_dead_lettered_total", destination="web") == 0
    assert metric_value(m, "conduit_forward_circuit_state", destination="web") == 0


def test_stow_503_is_retried_and_nothing_is_lost(
        pacs, stow_proxy, start_conduit, tmp_path):  # noqa: F811
    proxy = stow_proxy(pacs)
    proxy.answer(503)  # every request, probes included: the service is unavailable
    conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "web"))},
                             "destinations": [stow_destination("web", proxy.dicomweb_url)]})
    files = make_study(tmp_path / "study", 6)
    uids = {sop_uid(f) for f in files}
    send(conduit, files)
    proxy.wait_for(lambda p: p.statuses().count(503) >= 2, 15, "two STOW requests answered 503")
    wait_until(lambda: http_responses(conduit, "web", 503) >= 2, 10, interval=0.1,
               what="conduit_forward_http_responses_total{code=503}")
    assert not uids & pacs.sop_instance_uids()
    # (The queue gauges are refreshed on the destination's tick, not at each change.)
    wait_until(lambda: owed(conduit, "web") == 6, 10, interval=0.1, what="6 owed to web")
    assert metric_value(samples(conduit), "conduit_forward_dead_lettered_total",
                        destination="web") == 0

    proxy.pass_through()
    wait_until(lambda: not conduit.instances(), 30, interval=0.1,
               what="the spool to empty after the 503s stop", )
    assert uids <= pacs.sop_instance_uids()
    m = samples(conduit)
    assert metric_value(m, "conduit_forward_delivered_total", destination="web") == 6
    assert metric_value(m, "conduit_forward_dead_lettered_total", destination="web") == 0
    assert metric_value(m, "conduit_forward_retries_total", destination="web") >= 1


def test_stow_429_retry_after_is_honoured(pacs, stow_proxy, start_conduit, tmp_path):  # noqa: F811
    retry_after = 2
    proxy = stow_proxy(pacs)
    proxy.answer(429, retry_after=retry_after, times=1, only_stow=True)
    conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "web"))},
                             "destinations": [stow_destination(
                                 "web", proxy.dicomweb_url, parallel_requests=1,
                                 retry={**FAST_RETRY, "max_delay_seconds": 10})]})
    files = make_study(tmp_path / "study", 6)
    uids = {sop_uid(f) for f in files}
    send(conduit, files)
    wait_until(lambda: not conduit.instances(), 30, interval=0.1,
               what="the spool to empty", )
    assert uids <= pacs.sop_instance_uids()

    requests = proxy.stow_requests()
    refused = [r for r in requests if r.status == 429]
    assert len(refused) == 1, [(r.status, r.sop_uids) for r in requests]
    first = refused[0]
    # Each instance of the refused request went again, and not sooner than Retry-After.
    for uid in first.sop_uids:
        again = [r for r in requests if uid in r.sop_uids and r.received_at > first.received_at]
        assert again, f"{uid} was never sent again after the 429"
        waited = again[0].received_at - first.answered_at
        assert waited >= retry_after - 0.2, (
            f"{uid} was sent again {waited:.2f}s after 429 with Retry-After: {retry_after}")
    assert proxy.sop_counts() == {u: (2 if u in first.sop_uids else 1) for u in uids}
    m = samples(conduit)
    assert metric_value(m, "conduit_forward_http_responses_total", destination="web",
                        code="429") == 1
    assert metric_value(m, "conduit_forward_dead_lettered_total", destination="web") == 0
    assert metric_value(m, "conduit_forward_delivered_total", destination="web") == 6


def test_stow_slow_server_past_the_request_timeout_is_retried(
        pacs, stow_proxy, start_conduit, tmp_path):  # noqa: F811
    proxy = stow_proxy(pacs)
    proxy.delay(2.5, times=2, only_stow=True)  # past conduit's 1 s request timeout
    conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "web"))},
                             "destinations": [stow_destination(
                                 "web", proxy.dicomweb_url, request_timeout_seconds=1)]})
    files = make_study(tmp_path / "study", 6)
    uids = {sop_uid(f) for f in files}
    send(conduit, files)
    wait_until(lambda: not conduit.instances(), 40, interval=0.1,
               what="the spool to empty after the slow answers",)
    assert uids <= pacs.sop_instance_uids()
    delayed = [r for r in proxy.stow_requests() if r.action == "delay"]
    assert len(delayed) == 2
    # Everything in a request that timed out went again.
    counts = proxy.sop_counts()
    assert all(counts[u] >= 2 for r in delayed for u in r.sop_uids), counts
    m = samples(conduit)
    assert metric_value(m, "conduit_forward_retries_total", destination="web") >= 1
    assert metric_value(m, "conduit_forward_dead_lettered_total", destination="web") == 0
    assert metric_value(m, "conduit_forward_delivered_total", destination="web") == 6


def test_stow_202_with_one_failed_instance_retries_only_that_one(
        pacs, stow_proxy, start_conduit, tmp_path):  # noqa: F811
    proxy = stow_proxy(pacs, start=False)  # down while the study queues: one request for all
    conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "web"))},
                             "destinations": [stow_destination(
                                 "web", proxy.dicomweb_url, parallel_requests=1,
                                 max_instances_per_request=50)]})
    files = make_study(tmp_path / "study", 8)
    uids = [sop_uid(f) for f in files]
    victim = uids[3]
    send(conduit, files)
    wait_until(lambda: owed(conduit, "web") == 8, 10, interval=0.1, what="8 instances owed")

    proxy.fail_instance(victim)  # its part is not stored; the answer says 0xA700 for it
    proxy.start()
    wait_until(lambda: not conduit.instances(), 30, interval=0.1,
               what="the spool to empty", )
    assert set(uids) <= pacs.sop_instance_uids()

    requests = proxy.stow_requests()
    failing = [r for r in requests if r.action == "fail"]
    assert len(failing) == 1 and failing[0].status == 202 and len(failing[0].sop_uids) > 1, [
        (r.status, r.action, len(r.sop_uids)) for r in requests]
    # Only the failed one went again, after the 202.
    assert proxy.sop_counts() == {u: (2 if u == victim else 1) for u in uids}
    again = [r for r in requests if victim in r.sop_uids and r is not failing[0]]
    assert again[0].received_at >= failing[0].answered_at
    m = samples(conduit)
    assert metric_value(m, "conduit_forward_http_responses_total", destination="web",
                        code="202") == 1
    assert metric_value(m, "conduit_forward_delivered_total", destination="web") == 8
    assert metric_value(m, "conduit_forward_dead_lettered_total", destination="web") == 0


def test_stow_orthanc_400_for_one_instance_dead_letters_it_and_keeps_the_rest_delivered(
        pacs, stow_proxy, start_conduit, tmp_path):  # noqa: F811
    # Orthanc answers a request with an instance it cannot index (no Series Instance UID) with
    # HTTP 400: FailedSOPSequence 0xC000 for that one, ReferencedSOPSequence for the others,
    # which it did store. The others must count as delivered (not sent again), the bad one is
    # refused for good.
    proxy = stow_proxy(pacs, start=False)  # down while the study queues: one request for all
    conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "web"))},
                             "destinations": [stow_destination(
                                 "web", proxy.dicomweb_url, parallel_requests=1,
                                 max_instances_per_request=50)]})
    files = make_study(tmp_path / "study", 5)
    bad = files[2]
    ds = pydicom.dcmread(str(bad))
    del ds.SeriesInstanceUID
    ds.save_as(str(bad), write_like_original=False)
    uids = [sop_uid(f) for f in files]
    send(conduit, files)
    wait_until(lambda: owed(conduit, "web") == 5, 10, interval=0.1, what="5 instances owed")
    proxy.start()
    wait_for_metric(conduit, "conduit_forward_dead_lettered_total", 1, destination="web")
    wait_for_metric(conduit, "conduit_forward_delivered_total", 4, destination="web")
    assert set(uids) - {uids[2]} <= pacs.sop_instance_uids()
    assert uids[2] not in pacs.sop_instance_uids()
    assert proxy.statuses() == [400], proxy.statuses()
    assert proxy.sop_counts() == {u: 1 for u in uids}
    shown = queue_cli(conduit, "show", "web")
    assert shown.returncode == 0, shown.stderr
    assert "dead-lettered: 1" in shown.stdout and uids[2] in shown.stdout, shown.stdout
    assert http_responses(conduit, "web", 400) == 1
    wait_until(lambda: len(conduit.instances()) == 1, 10, interval=0.1,
               what="only the dead letter left in the spool")


def test_dimse_and_stow_at_once_and_a_down_stow_server_holds_nothing_back(
        pacs, stow_proxy, start_conduit, tmp_path):  # noqa: F811
    scp = forking_scp(tmp_path)
    proxy = stow_proxy(pacs, start=False)  # the DICOMweb server is down
    try:
        conduit = start_conduit({
            "rules": {"file": str(route_all_rules(tmp_path, "pacs", "web"))},
            "destinations": [
                {"name": "pacs", "host": "127.0.0.1", "port": scp.port, "called_ae": "STORESCP",
                 "retry": dict(FAST_RETRY)},
                stow_destination("web", proxy.dicomweb_url)]})
        files = make_study(tmp_path / "study", 10)
        uids = {sop_uid(f) for f in files}
        send(conduit, files)
        wait_until(lambda: len(scp.files()) == 10, 20, interval=0.1,
                   what="storescp to have all 10 while the STOW server is down")
        wait_for_metric(conduit, "conduit_forward_delivered_total", 10, destination="pacs")
        wait_until(lambda: owed(conduit, "web") == 10, 10, interval=0.1,
                   what="10 owed to web")
        assert metric_value(samples(conduit), "conduit_forward_delivered_total",
                            destination="web") == 0
        assert not uids & pacs.sop_instance_uids()
        assert len(conduit.instances()) == 10  # still owed to web

        proxy.start()
        wait_until(lambda: not conduit.instances(), 30, interval=0.1,
                   what="the spool to empty once the STOW server is up")
        assert uids <= pacs.sop_instance_uids()
        assert len(scp.files()) == 10  # nothing sent twice to the DIMSE side
        for f in scp.files():
            p = read_part10(f)
            sent = next(x for x in files if sop_uid(x) == p.meta_str(0x0003))
            assert p.dataset == read_part10(sent).dataset
        m = samples(conduit)
        assert metric_value(m, "conduit_forward_delivered_total", destination="web") == 10
        assert metric_value(m, "conduit_forward_dead_lettered_total") == 0
    finally:
        scp.stop()


def test_stow_auth_from_files_basic_and_bearer_and_a_rotated_token_is_read_again(
        pacs, stow_proxy, start_conduit, tmp_path):  # noqa: F811
    import base64
    proxy = stow_proxy(pacs)  # Orthanc (authentication off) ignores the header; the proxy sees it
    password, token = tmp_path / "password", tmp_path / "token"
    password.write_text("s3cret pw\n")  # trailing white space is not part of a secret
    token.write_text("token-one\n")
    conduit = start_conduit({
        "rules": {"file": str(route_all_rules(tmp_path, "basic", "bearer"))},
        "destinations": [
            stow_destination("basic", proxy.dicomweb_url,
                             auth={"type": "basic", "username": "conduit",
                                   "password_file": str(password)}),
            stow_destination("bearer", proxy.dicomweb_url,
                             auth={"type": "bearer", "token_file": str(token)})]})
    first = make_study(tmp_path / "first", 2, tag=1)
    send(conduit, first)
    wait_spool_empty(conduit)
    token.write_text("token-number-two\n")  # rotated: read again without a restart
    second = make_study(tmp_path / "second", 2, tag=2)
    send(conduit, second)
    wait_spool_empty(conduit)

    basic = "Basic " + base64.b64encode(b"conduit:s3cret pw").decode()
    seen: dict[str, list[str]] = {}  # SOP Instance UID -> Authorization of each request
    for r in proxy.stow_requests():
        for uid in r.sop_uids:
            seen.setdefault(uid, []).append(r.headers.get("authorization", "(none)"))
    for files, bearer in ((first, "Bearer token-one"), (second, "Bearer token-number-two")):
        for f in files:
            assert sorted(seen.get(sop_uid(f), [])) == sorted([basic, bearer]), (f, seen)
    assert {sop_uid(f) for f in first + second} <= pacs.sop_instance_uids()


# ------------------------------------------------------------------------------------------
# S3


def test_s3_objects_under_template_keys_byte_identical(
        s3_peer, ct_study, start_conduit, tmp_path):  # noqa: F811
    s3 = s3_peer()
    # A 6 MiB instance goes up in two parts (threshold and part size at S3's 5 MiB minimum).
    big = make_instance(tmp_path / "big.dcm", sop_instance_uid=make_uid(64, 1),
                        pixel_bytes=6 << 20, seed=64)
    files = ct_study[:5] + [big]
    conduit = start_conduit({
        "rules": {"file": str(route_all_rules(tmp_path, "bucket"))},
        "destinations": [s3.destination("bucket", key_template=DEFAULT_KEY_TEMPLATE,
                                        multipart_threshold_bytes="5MiB",
                                        multipart_part_bytes="5MiB", parallel_requests=2,
                                        retry=dict(FAST_RETRY))]})
    send(conduit, files)
    wait_until(lambda: not conduit.instances(), 30, interval=0.1,
               what="the spool to empty (every object stored)")
    expected = {template_key(f): f for f in files}
    assert s3.keys() == sorted(expected)
    for key, f in expected.items():
        data, headers = s3.get_with_headers(key)
        assert headers.get("content-type") == "application/dicom", (key, headers)
        assert_delivered_part10(data, f, key)
        if f is not big:
            assert (pixels(data) == pixels(f)).all(), key
    m = samples(conduit)
    assert metric_value(m, "conduit_forward_delivered_total", destination="bucket") == len(files)
    assert metric_value(m, "conduit_forward_dead_lettered_total", destination="bucket") == 0
    # One answer per object is counted (a multipart upload's last, CompleteMultipartUpload).
    assert metric_value(m, "conduit_forward_http_responses_total", destination="bucket",
                        code="200") >= len(files)
    # The big one went up in two parts, the others in one PUT each.
    assert sorted(n for n, _ in s3.parts_stored()) == [1, 2], s3.parts_stored()


def test_s3_unknown_access_key_is_dead_lettered_with_the_reason(
        s3_peer, start_conduit, tmp_path):  # noqa: F811
    s3 = s3_peer()
    conduit = start_conduit({
        "rules": {"file": str(route_all_rules(tmp_path, "bucket"))},
        "destinations": [s3.destination("bucket", access_key_id="NOSUCHKEY",
                                        retry=dict(FAST_RETRY))]})
    files = make_study(tmp_path / "study", 3)
    send(conduit, files)
    wait_until(lambda: metric_value(samples(conduit), "conduit_forward_dead_lettered_total",
                                    destination="bucket") == 3, 20, interval=0.1,
               what="the 3 instances to be dead-lettered",
               )
    shown = queue_cli(conduit, "show", "bucket")
    assert shown.returncode == 0, shown.stderr
    assert "InvalidAccessKeyId" in shown.stdout, shown.stdout
    assert "dead-lettered: 3" in shown.stdout, shown.stdout
    assert s3.keys() == []
    assert len(conduit.instances()) == 3  # kept for an operator's retry or purge
    assert http_responses(conduit, "bucket", 403) >= 1
    assert metric_value(samples(conduit), "conduit_forward_delivered_total",
                        destination="bucket") == 0


# ------------------------------------------------------------------------------------------
# folder


def test_folder_destination_writes_template_paths_and_leaves_no_temp_files(
        ct_study, start_conduit, tmp_path):
    export, compressed = tmp_path / "export", tmp_path / "export-jls"
    rules = write_rules(tmp_path / "rules.yaml", "version: 1\nrules:\n  - name: everything\n"
                        "    route:\n      - export\n      - destination: export_jls\n"
                        "        transcode: jls\n")
    conduit = start_conduit({
        "rules": {"file": str(rules)},
        "destinations": [folder_destination("export", export),
                         folder_destination("export_jls", compressed)],
        "transcoding": {"profiles": [{"name": "jls", "transfer_syntax": JPEG_LS_LOSSLESS}]}})
    compressed.mkdir()
    # `export` does not exist yet (a share not mounted): that destination is down, the other
    # is not held back, and nothing is created in its place.
    files = ct_study[5:]
    send(conduit, files)
    wait_until(lambda: metric_value(samples(conduit), "conduit_forward_delivered_total",
                                    destination="export_jls") == len(files)
               and metric_value(samples(conduit), "conduit_forward_circuit_state",
                                destination="export") == 1, 20, interval=0.1,
               what="export_jls delivered and export's circuit open")
    assert not export.exists()
    wait_until(lambda: owed(conduit, "export") == len(files), 10, interval=0.1,
               what="export's queue to owe every instance")
    export.mkdir()
    wait_spool_empty(conduit)
    expected = {template_key(f): f for f in files}
    # Exactly the expected files: no temporary or partial file left beside them.
    assert all_files(export) == set(expected)
    assert all_files(compressed) == set(expected)
    for key, f in expected.items():
        assert_delivered_part10((export / key).read_bytes(), f, key)
        assert_delivered_part10((compressed / key).read_bytes(), f, key,
                                transfer_syntax=JPEG_LS_LOSSLESS)
        assert (gdcm_pixels(compressed / key, tmp_path) == pixels(f)).all(), key
    m = samples(conduit)
    for name in ("export", "export_jls"):
        assert metric_value(m, "conduit_forward_delivered_total", destination=name) == len(files)
        assert metric_value(m, "conduit_forward_dead_lettered_total", destination=name) == 0


def test_key_template_with_unsafe_values_gives_safe_keys(
        s3_peer, start_conduit, tmp_path):  # noqa: F811
    s3 = s3_peer()
    template = "{PatientID}/{PatientName}/{SOPInstanceUID}.dcm"
    creds = tmp_path / "s3.credentials"
    creds.write_text(f"access_key_id = {s3.access_key_id}\n"
                     f"secret_access_key = {s3.secret_access_key}\n")
    creds.chmod(0o600)
    export = tmp_path / "out" / "export"
    export.mkdir(parents=True)
    bucket = s3.destination("bucket", key_template=template, retry=dict(FAST_RETRY))
    del bucket["access_key_id"], bucket["secret_access_key"]
    bucket["credentials_file"] = str(creds)
    conduit = start_conduit({
        "rules": {"file": str(route_all_rules(tmp_path, "bucket", "export"))},
        "destinations": [bucket, folder_destination("export", export, key_template=template)]})

    prefix = make_uid(65)
    cases = [("..", "DOE^JOHN/../../etc"), ("a/b c", "A B^C=D"), (".", None)]
    files = []
    for i, (patient_id, name) in enumerate(cases):
        path = make_instance(tmp_path / f"u{i}.dcm", sop_instance_uid=f"{prefix}.{i}",
                             pixel_bytes=1024, seed=i)
        ds = pydicom.dcmread(str(path))
        ds.PatientID = patient_id
        if name is None:
            del ds.PatientName  # absent: "unknown"
        else:
            ds.PatientName = name
        ds.save_as(str(path), write_like_original=False)
        files.append(path)
    send(conduit, files)
    wait_spool_empty(conduit)

    expected = set()
    for (patient_id, name), f in zip(cases, files):
        expected.add(f"{safe_key_value(patient_id)}/{safe_key_value(name or '')}/{sop_uid(f)}.dcm")
    keys = s3.keys()
    on_disk = all_files(export)
    for key in [*keys, *on_disk]:
        segments = key.split("/")
        assert len(segments) == 3, key  # a '/' in a value adds no level
        assert SAFE_KEY.match(key), key
        assert not {".", "..", ""} & set(segments), key
    assert set(keys) == expected
    assert on_disk == expected
    # Nothing escaped the folder.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["export"]
    assert not (tmp_path / "etc").exists()
    for key in expected:
        assert read_part10(export / key).dataset == read_part10(
            next(f for f in files if key.endswith(sop_uid(f) + ".dcm"))).dataset
