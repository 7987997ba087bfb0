"""Prometheus metrics on metrics.listen: the families exist and move when work is done."""

import time
import urllib.error
import urllib.request

import pytest

import dicom_ul as ul
from conftest import (HOST, make_instance, make_uid, metric_value, parse_metrics,
                      read_part10, run_storescu, wait_until)

FAMILIES = [
    "conduit_associations_active",
    "conduit_associations_total",
    "conduit_associations_rejected_total",
    "conduit_instances_received_total",
    "conduit_received_bytes_total",
    "conduit_cstore_responses_total",
    "conduit_spool_commit_seconds",
    "conduit_spool_bytes",
    "conduit_disk_free_bytes",
]


def scrape(c):
    return parse_metrics(c.metrics_text())


def test_families_are_exposed(conduit, tmp_path):
    # Labelled families may have no series (and so no # TYPE line) before their first event,
    # so give each one an event first: a stored instance and a rejected association.
    f = make_instance(tmp_path / "one.dcm", sop_instance_uid=make_uid(13, 1), pixel_bytes=4096)
    assert run_storescu(conduit.port, [f], aet="FAMILYSCU").returncode == 0
    with pytest.raises(ul.Rejected):
        conduit.associate(called_ae="SOMEONEELSE")

    def types_now():
        types = {}
        for line in conduit.metrics_text().splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(None, 3)
                types[name] = kind
        return types

    deadline = time.monotonic() + 10  # counters may be bumped just after the response
    while True:
        types = types_now()
        missing = [f for f in FAMILIES if f not in types]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not missing, f"families missing from /metrics: {missing}\n{conduit.metrics_text()[:3000]}"
    text = conduit.metrics_text()
    assert types["conduit_spool_commit_seconds"] == "histogram"
    assert types["conduit_associations_active"] == "gauge"
    assert types["conduit_associations_total"] == "counter"
    samples = parse_metrics(text)
    assert metric_value(samples, "conduit_disk_free_bytes") > 0


def test_counters_move_after_a_send(conduit, tmp_path):
    before = scrape(conduit)
    files = [make_instance(tmp_path / f"{i}.dcm", sop_instance_uid=make_uid(12, i),
                           pixel_bytes=64 * 1024, seed=i) for i in range(3)]
    res = run_storescu(conduit.port, files, aet="METRICSCU")
    assert res.returncode == 0, res.stderr
    dataset_bytes = sum(len(read_part10(f).dataset) for f in conduit.instances())
    spooled_file_bytes = sum(f.stat().st_size for f in conduit.instances())

    def moved():
        after = scrape(conduit)
        return after if metric_value(after, "conduit_instances_received_total",
                                     calling_ae="METRICSCU") >= 3 else None

    after = wait_until(moved, 10, what="instances_received_total to count the send")

    def delta(name, **labels):
        return metric_value(after, name, **labels) - metric_value(before, name, **labels)

    assert delta("conduit_instances_received_total", calling_ae="METRICSCU") == 3
    got = delta("conduit_received_bytes_total", calling_ae="METRICSCU")
    assert got >= dataset_bytes, f"received_bytes_total moved by {got}, datasets were {dataset_bytes}"
    assert got < 2 * spooled_file_bytes + 65536, got
    assert delta("conduit_cstore_responses_total", status="0x0000") == 3
    assert delta("conduit_associations_total") >= 1
    assert delta("conduit_spool_commit_seconds_count") >= 3
    assert delta("conduit_spool_commit_seconds_sum") >= 0
    buckets = [s for s in after if s[0] == "conduit_spool_commit_seconds_bucket"]
    assert any(l.get("le") == "+Inf" for _, l, _ in buckets), "histogram without a +Inf bucket"
    # A gauge may be refreshed a moment later than the counters: wait for it, bounded.
    wait_until(lambda: metric_value(scrape(conduit), "conduit_spool_bytes") >= dataset_bytes, 10,
               what=f"conduit_spool_bytes to reach the {dataset_bytes} dataset bytes stored")
    assert metric_value(after, "conduit_disk_free_bytes") > 0


def test_active_associations_gauge(conduit):
    wait_until(lambda: metric_value(scrape(conduit), "conduit_associations_active") == 0, 10,
               what="no active association at rest")
    a = conduit.associate(contexts=[(1, ul.VERIFICATION_SOP_CLASS, [ul.IMPLICIT_VR_LE])])
    try:
        assert a.echo(1) == 0
        assert metric_value(scrape(conduit), "conduit_associations_active") == 1
    finally:
        a.release()
    wait_until(lambda: metric_value(scrape(conduit), "conduit_associations_active") == 0, 10,
               what="active associations back to 0 after release")


def test_rejections_are_counted(conduit):
    before = metric_value(scrape(conduit), "conduit_associations_rejected_total")
    with pytest.raises(ul.Rejected):
        conduit.associate(called_ae="SOMEONEELSE")
    with pytest.raises(ul.Rejected):
        conduit.associate(application_context="1.2.3.4")
    samples = wait_until(
        lambda: (s := scrape(conduit)) and
        metric_value(s, "conduit_associations_rejected_total") - before >= 2 and s,
        10, what="rejections to be counted")
    assert metric_value(samples, "conduit_associations_rejected_total") - before == 2
    reasons = {l.get("reason") for n, l, v in samples
               if n == "conduit_associations_rejected_total" and v > 0}
    assert None not in reasons and len(reasons) >= 2, f"reasons not told apart: {reasons}"


def test_metrics_disabled(start_conduit):
    c = start_conduit({"metrics": {"enabled": False}})
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(f"http://{HOST}:{c.metrics_port}/metrics", timeout=3)
