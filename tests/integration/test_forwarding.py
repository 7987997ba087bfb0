"""The DIMSE forwarders against real DCMTK storescp destinations: outages, refusals, operator
commands, study-level routing and the per-destination metrics.

Each test writes a rules file routing to one or two storescp processes and waits (bounded) for
what must arrive. The Orthanc tests (test_forward_orthanc.py) cover the corpus and kill -9."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import (CONDUIT_BIN, StoreScp, make_instance, make_uid, metric_value,
                      parse_metrics, run_storescu, wait_until)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

def association_profile(sop_class: str, *transfer_syntaxes: str) -> str:
    """A storescp association profile (`-xf FILE PROFILE`, profile name "P") accepting only
    `sop_class` and Verification, in only the given syntaxes (DCMTK keywords)."""
    syntaxes = "\n".join(f"TransferSyntax{i} = {ts}" for i, ts in enumerate(transfer_syntaxes, 1))
    return (f"[[TransferSyntaxes]]\n[Syntaxes]\n{syntaxes}\n\n"
            f"[[PresentationContexts]]\n[Contexts]\n"
            f"PresentationContext1 = {sop_class}\\Syntaxes\n"
            f"PresentationContext2 = VerificationSOPClass\\Syntaxes\n\n"
            f"[[Profiles]]\n[P]\nPresentationContexts = Contexts\n")


# A storescp that accepts CT Image Storage (and Verification) only.
CT_ONLY_PROFILE = association_profile("CTImageStorage", "LocalEndianExplicit",
                                      "LittleEndianImplicit")
# One that accepts Secondary Capture in Implicit VR Little Endian only.
IMPLICIT_ONLY_PROFILE = association_profile("SecondaryCaptureImageStorage", "LittleEndianImplicit")

FAST_RETRY = {"initial_delay_ms": 100, "max_delay_seconds": 1, "breaker_failures": 2}


def forking_scp(tmp_path: Path, **kwargs) -> StoreScp:
    """storescp --fork: one process per association, like a PACS that takes several at once
    (a plain storescp serves one at a time and leaves our other lanes waiting)."""
    return StoreScp(tmp_path, fork=True, **kwargs)


def destination(name: str, scp: StoreScp, **extra) -> dict:
    return {"name": name, "host": "127.0.0.1", "port": scp.port, "called_ae": "STORESCP",
            "retry": FAST_RETRY, **extra}


def write_rules(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def route_all_rules(tmp_path: Path, *destinations: str) -> Path:
    return write_rules(tmp_path / "rules.yaml",
                       "version: 1\nrules:\n  - name: everything\n"
                       f"    route: [{', '.join(destinations)}]\n")


def make_study(directory: Path, count: int, *, sop_class: str = SECONDARY_CAPTURE,
               first: int = 0, tag: int = 1, prefix: str | None = None) -> list[Path]:
    """`count` instances of one study: make_instance derives the study from the UID prefix, so
    calls with the same `prefix` add to the same study."""
    directory.mkdir(parents=True, exist_ok=True)
    prefix = prefix or make_uid(tag)
    return [make_instance(directory / f"{tag}_{i}.dcm", sop_instance_uid=f"{prefix}.{i}",
                          pixel_bytes=4096, seed=i, sop_class_uid=sop_class)
            for i in range(first, first + count)]


def received_sop_uids(scp: StoreScp) -> set[str]:
    """The SOP Instance UIDs of the files storescp has written. It writes in place, so a poll can
    meet a file still being written: that one counts once it reads whole (a file that never does
    is never counted, and the caller's comparison fails)."""
    import pydicom
    uids = set()
    for f in scp.files():
        try:
            uids.add(str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID))
        except Exception:  # truncated: InvalidDicomError, EOFError, struct.error, ...
            continue
    return uids


def sop_uid(path: Path) -> str:
    import pydicom
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def queue_cli(conduit, *words: str) -> subprocess.CompletedProcess:
    config = conduit.workdir / "queue-cli.yaml"
    config.write_text(json.dumps({"admin": {"socket": str(conduit.workdir / "var/admin.sock")}}))
    return subprocess.run([str(CONDUIT_BIN), "queue", "--config", str(config), *words],
                          capture_output=True, text=True, timeout=30)


def wait_spool_empty(conduit, timeout: float = 30.0) -> None:
    wait_until(lambda: not conduit.instances(), timeout, interval=0.1,
               what="the spool to empty (every destination confirmed)")


def wait_for_metric(conduit, name: str, value: float, timeout: float = 20.0, **labels) -> None:
    wait_until(lambda: metric_value(parse_metrics(conduit.metrics_text()), name, **labels) == value,
               timeout, interval=0.1, what=f"{name}{labels} to reach {value}")


def ct_only_scp(tmp_path: Path) -> StoreScp:
    """A PACS that refuses every SOP class but CT Image Storage."""
    profile = tmp_path / "ct-only.cfg"
    profile.write_text(CT_ONLY_PROFILE)
    return forking_scp(tmp_path, extra_args=("-xf", str(profile), "P"))


def test_routed_instances_reach_both_destinations_and_leave_the_spool(start_conduit, tmp_path):
    a = forking_scp(tmp_path, name="scp_a")
    b = forking_scp(tmp_path, name="scp_b")
    try:
        conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "a", "b"))},
                                 "destinations": [destination("a", a), destination("b", b)]})
        files = make_study(tmp_path / "study", 12)
        assert run_storescu(conduit.port, files).returncode == 0
        wait_spool_empty(conduit)
        sent = {sop_uid(f) for f in files}
        assert received_sop_uids(a) == sent
        assert received_sop_uids(b) == sent
        samples = parse_metrics(conduit.metrics_text())
        for name in ("a", "b"):
            assert metric_value(samples, "conduit_forward_delivered_total", destination=name) == 12
            assert metric_value(samples, "conduit_forward_sends_total", destination=name,
                                status="0x0000") == 12
            assert metric_value(samples, "conduit_forward_queue_depth", destination=name,
                                state="ready") == 0
        listing = queue_cli(conduit, "list")
        assert listing.returncode == 0, listing.stderr
        assert "a " in listing.stdout and "idle" in listing.stdout
    finally:
        a.stop()
        b.stop()


def test_destination_down_at_start_gets_everything_once_it_is_up(start_conduit, tmp_path):
    scp = forking_scp(tmp_path, start=False)  # its port is chosen, nothing listens yet
    conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "pacs"))},
                             "destinations": [destination("pacs", scp)]})
    files = make_study(tmp_path / "study", 20)
    assert run_storescu(conduit.port, files).returncode == 0
    # Acknowledged and owed: the circuit opens after the connection failures.
    wait_until(lambda: metric_value(parse_metrics(conduit.metrics_text()),
                                    "conduit_forward_circuit_state", destination="pacs") == 1,
               15.0, interval=0.1, what="the circuit to open")
    listing = queue_cli(conduit, "list")
    assert "open" in listing.stdout and "Connection refused" in listing.stdout, listing.stdout
    assert len(conduit.instances()) == 20
    try:
        scp.start()
        wait_spool_empty(conduit)
        assert received_sop_uids(scp) == {sop_uid(f) for f in files}
        samples = parse_metrics(conduit.metrics_text())
        assert metric_value(samples, "conduit_forward_dead_lettered_total", destination="pacs") == 0
        assert metric_value(samples, "conduit_forward_probes_total", destination="pacs",
                            result="answered") >= 1
        assert metric_value(samples, "conduit_forward_connection_failures_total",
                            destination="pacs") >= 2
        assert metric_value(samples, "conduit_forward_circuit_state", destination="pacs") == 0
    finally:
        scp.stop()


def test_refused_sop_class_is_dead_lettered_then_retried_after_the_fix(start_conduit, tmp_path):
    scp = ct_only_scp(tmp_path)
    try:
        conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "pacs"))},
                                 "destinations": [destination("pacs", scp)]})
        ct = make_study(tmp_path / "ct", 4, sop_class=CT_IMAGE_STORAGE, tag=1)
        sc = make_study(tmp_path / "sc", 3, sop_class=SECONDARY_CAPTURE, tag=2)
        assert run_storescu(conduit.port, ct + sc).returncode == 0
        wait_for_metric(conduit, "conduit_forward_dead_lettered_total", 3,
                        destination="pacs")
        wait_until(lambda: received_sop_uids(scp) == {sop_uid(f) for f in ct}, 10.0,
                   interval=0.1, what="the CT instances")
        assert len(scp.files()) == 4
        # Kept in the spool, listed with the reason, not retried on their own.
        wait_until(lambda: len(conduit.instances()) == 3, 10.0, interval=0.1,
                   what="the delivered CT files to leave the spool")
        shown = queue_cli(conduit, "show", "pacs")
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.count("reason: destination refused SOP class " + SECONDARY_CAPTURE) == 3
        assert "dead-lettered: 3" in shown.stdout
        assert "possible" not in conduit.log()

        # The PACS is fixed; the operator sends the dead letters again.
        scp.stop()
        scp.start(extra_args=())
        retried = queue_cli(conduit, "retry", "pacs", "--dead-letter")
        assert retried.returncode == 0, retried.stderr
        assert "retrying 3" in retried.stdout
        wait_spool_empty(conduit)
        assert received_sop_uids(scp) == {sop_uid(f) for f in ct + sc}
    finally:
        scp.stop()


def test_purge_drops_dead_letters_and_releases_their_files(start_conduit, tmp_path):
    scp = ct_only_scp(tmp_path)
    try:
        conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "pacs"))},
                                 "destinations": [destination("pacs", scp)]})
        sc = make_study(tmp_path / "sc", 2, sop_class=SECONDARY_CAPTURE)
        assert run_storescu(conduit.port, sc).returncode == 0
        wait_for_metric(conduit, "conduit_forward_dead_lettered_total", 2,
                        destination="pacs")
        refused = queue_cli(conduit, "purge", "pacs")
        assert refused.returncode == 2  # purge needs an explicit selection
        purged = queue_cli(conduit, "purge", "pacs", "--dead-letter")
        assert purged.returncode == 0, purged.stderr
        assert "purged 2" in purged.stdout
        wait_spool_empty(conduit)
        unknown = queue_cli(conduit, "show", "nowhere")
        assert unknown.returncode == 1 and "no destination named 'nowhere'" in unknown.stderr
    finally:
        scp.stop()


def test_study_level_route_waits_for_quiet_then_sends_the_study_in_one_association(
        start_conduit, tmp_path):
    scp = forking_scp(tmp_path)
    rules = write_rules(tmp_path / "rules.yaml", """\
version: 1
rules:
  - name: whole-studies
    route: [pacs]
    level: study
    quiet_period_seconds: 3
""")
    try:
        conduit = start_conduit({"rules": {"file": str(rules)},
                                 "destinations": [destination("pacs", scp)]})
        study = make_uid(7)
        first = make_study(tmp_path / "study", 5, first=0, prefix=study)
        second = make_study(tmp_path / "study", 5, first=5, prefix=study)
        assert run_storescu(conduit.port, first).returncode == 0
        assert run_storescu(conduit.port, second).returncode == 0  # a second association
        wait_until(lambda: metric_value(parse_metrics(conduit.metrics_text()),
                                        "conduit_forward_queue_depth", destination="pacs",
                                        state="held") == 10,
                   5.0, interval=0.05, what="the held-instances gauge")
        assert scp.files() == []  # held until the study has been quiet for 3 s
        wait_spool_empty(conduit, timeout=30.0)
        assert received_sop_uids(scp) == {sop_uid(f) for f in first + second}
        assert store_requests_per_association(scp.log()) == [10]

        # A late arrival goes out too (after its own quiet period) and is counted.
        late = make_study(tmp_path / "study", 1, first=10, prefix=study)
        assert run_storescu(conduit.port, late).returncode == 0
        wait_spool_empty(conduit, timeout=30.0)
        assert metric_value(parse_metrics(conduit.metrics_text()),
                            "conduit_forward_late_arrivals_total", destination="pacs") == 1
        assert len(scp.files()) == 11
    finally:
        scp.stop()


def store_requests_per_association(log: str) -> list[int]:
    """storescp -v: the number of C-STORE requests in each association that had any."""
    counts: list[int] = []
    for line in log.splitlines():
        if "Association Received" in line:
            counts.append(0)
        elif "Received Store Request" in line and counts:
            counts[-1] += 1
    return [c for c in counts if c]


def test_route_edits_are_applied_on_the_way_out(start_conduit, tmp_path):
    import pydicom
    scp = forking_scp(tmp_path)
    rules = write_rules(tmp_path / "rules.yaml", """\
version: 1
rules:
  - name: research
    route:
      - destination: research
        edits:
          - set: {attribute: PatientName, value: ANON}
          - delete: {attribute: PatientID}
""")
    try:
        conduit = start_conduit({"rules": {"file": str(rules)},
                                 "destinations": [destination("research", scp)]})
        files = make_study(tmp_path / "study", 2)
        assert run_storescu(conduit.port, files).returncode == 0
        wait_spool_empty(conduit)
        for received in scp.files():
            ds = pydicom.dcmread(received)
            assert str(ds.PatientName) == "ANON"
            assert "PatientID" not in ds
            original = pydicom.dcmread(next(f for f in files if sop_uid(f) == ds.SOPInstanceUID))
            assert ds.PixelData == original.PixelData
    finally:
        scp.stop()


def test_sigterm_while_forwarding_keeps_the_rest_for_the_next_start(start_conduit, tmp_path):
    scp = forking_scp(tmp_path, start=False)
    config = {"rules": {"file": str(route_all_rules(tmp_path, "pacs"))},
              "destinations": [destination("pacs", scp)]}
    conduit = start_conduit(config)
    files = make_study(tmp_path / "study", 6)
    assert run_storescu(conduit.port, files).returncode == 0
    assert conduit.stop() == 0
    assert len(conduit.instances()) == 6  # owed, so kept
    try:
        scp.start()
        conduit.start()  # same workdir, config and spool
        wait_spool_empty(conduit)
        assert received_sop_uids(scp) == {sop_uid(f) for f in files}
    finally:
        scp.stop()


def test_instance_is_converted_when_the_destination_takes_only_another_uncompressed_syntax(
        start_conduit, tmp_path):
    import pydicom
    profile = tmp_path / "implicit-only.cfg"
    profile.write_text(IMPLICIT_ONLY_PROFILE)
    scp = forking_scp(tmp_path, extra_args=("-xf", str(profile), "P"))
    try:
        conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "pacs"))},
                                 "destinations": [destination("pacs", scp)]})
        files = make_study(tmp_path / "study", 3)  # Explicit VR Little Endian
        assert run_storescu(conduit.port, files).returncode == 0
        wait_spool_empty(conduit)
        assert len(scp.files()) == 3
        for received in scp.files():
            ds = pydicom.dcmread(received)
            assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
            original = pydicom.dcmread(next(f for f in files if sop_uid(f) == ds.SOPInstanceUID))
            assert original.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
            assert ds.PixelData == original.PixelData
            assert ds.PatientName == original.PatientName
    finally:
        scp.stop()


def test_a_dead_destination_does_not_hold_up_the_others(start_conduit, tmp_path):
    up = forking_scp(tmp_path, name="up")
    down = forking_scp(tmp_path, name="down", start=False)
    conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "up", "down"))},
                             "destinations": [destination("up", up), destination("down", down)]})
    try:
        files = make_study(tmp_path / "study", 30)
        assert run_storescu(conduit.port, files).returncode == 0
        wait_until(lambda: len(up.files()) == 30, 30.0, interval=0.1,
                   what="the live destination to get everything")
        samples = parse_metrics(conduit.metrics_text())
        assert metric_value(samples, "conduit_forward_delivered_total", destination="up") == 30
        assert metric_value(samples, "conduit_forward_delivered_total", destination="down") == 0
        # Still owed to the dead one, so every file stays.
        assert len(conduit.instances()) == 30
        assert metric_value(samples, "conduit_spool_instances") == 30
        down.start()
        wait_spool_empty(conduit)
        wait_until(lambda: metric_value(parse_metrics(conduit.metrics_text()),
                                        "conduit_spool_instances") == 0,
                   5.0, interval=0.1, what="the spool gauge to drop to 0")
        assert len(down.files()) == 30
    finally:
        up.stop()
        down.stop()


def test_dead_letters_survive_a_restart_and_are_not_resent(start_conduit, tmp_path):
    scp = ct_only_scp(tmp_path)
    try:
        conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "pacs"))},
                                 "destinations": [destination("pacs", scp)]})
        sc = make_study(tmp_path / "sc", 2, sop_class=SECONDARY_CAPTURE)
        assert run_storescu(conduit.port, sc).returncode == 0
        wait_for_metric(conduit, "conduit_forward_dead_lettered_total", 2,
                        destination="pacs")
        assert conduit.stop() == 0
        conduit.start()
        shown = queue_cli(conduit, "show", "pacs")
        assert "dead-lettered: 2" in shown.stdout, shown.stdout
        assert shown.stdout.count("reason: destination refused SOP class") == 2
        samples = parse_metrics(conduit.metrics_text())
        assert (metric_value(samples, "conduit_forward_sends_total", destination="pacs",
                             status="0x0000") or 0) == 0
        assert "queues: 0 deliveries owed" in conduit.log() and "2 dead-lettered" in conduit.log()
    finally:
        scp.stop()


def test_instances_for_a_destination_removed_from_the_config_are_kept_and_purgeable(
        start_conduit, tmp_path):
    gone = forking_scp(tmp_path, name="gone", start=False)  # never up
    stays = forking_scp(tmp_path, name="stays")
    try:
        conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "old"))},
                                 "destinations": [destination("old", gone),
                                                  destination("new", stays)]})
        files = make_study(tmp_path / "study", 3)
        assert run_storescu(conduit.port, files).returncode == 0
        assert conduit.stop() == 0
        # The admin drops "old" from the configuration and routes to "new" from now on.
        route_all_rules(tmp_path, "new")
        conduit.config["destinations"] = [destination("new", stays)]
        conduit.write_config()
        conduit.start()
        assert "destination 'old' is not in the configuration but 3 spooled instances" in \
            conduit.log()
        listing = queue_cli(conduit, "list")
        assert "not-configured" in listing.stdout, listing.stdout
        assert len(conduit.instances()) == 3
        purged = queue_cli(conduit, "purge", "old", "--all")
        assert purged.returncode == 0 and "purged 3" in purged.stdout, purged
        wait_spool_empty(conduit)
        assert stays.files() == []  # what was routed to "old" never goes to "new"
    finally:
        gone.stop()
        stays.stop()
