"""SIGHUP reloads the configuration's destinations and the rules together, without dropping an
association or losing an instance: a reload in the middle of a 200-instance transfer, a new
destination that delivers at once, a changed one that keeps its queue, a removed one whose
queue stays for the operator, and a configuration that fails validation (refused, the old one
stays). The storescp destinations and helpers are those of test_forwarding."""
from __future__ import annotations

import signal
import subprocess

from conftest import (CALLED_AE, HOST, dcmtk_env, make_instance, make_uid, metric_value,
                      parse_metrics, run_storescu, wait_until)
from test_forwarding import (destination, forking_scp, make_study, queue_cli, received_sop_uids,
                             route_all_rules, sop_uid, wait_spool_empty)

SENDER = "RELOADSCU"


def reload(conduit, config_changes: dict | None = None, rules: tuple[str, ...] | None = None,
           tmp_path=None) -> float:
    """Rewrites the configuration (and the rules, routing everything to `rules`), sends SIGHUP
    and waits until the reload was counted; returns the count of successful reloads."""
    before = metric_value(parse_metrics(conduit.metrics_text()), "conduit_config_reloads_total")
    if rules is not None:
        route_all_rules(tmp_path, *rules)
    if config_changes:
        conduit.config.update(config_changes)
        conduit.write_config()
    conduit.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: metric_value(parse_metrics(conduit.metrics_text()),
                                    "conduit_config_reloads_total") > before,
               15, interval=0.05, what="the reload to be counted")
    return metric_value(parse_metrics(conduit.metrics_text()), "conduit_config_reloads_total",
                        result="ok")


def accepted_associations(conduit, calling_ae: str) -> int:
    return conduit.log().count(f"accepted: calling={calling_ae} ")


def test_sighup_in_the_middle_of_a_transfer_loses_nothing_and_the_next_association_uses_the_new_rules(
        start_conduit, tmp_path):
    a = forking_scp(tmp_path, name="scp_a")
    b = forking_scp(tmp_path, name="scp_b")
    try:
        conduit = start_conduit({
            "rules": {"file": str(route_all_rules(tmp_path, "a")), "reload_check_seconds": 0},
            "destinations": [destination("a", a)]})
        # 128 KiB each: the transfer lasts long enough to be interrupted by the reload.
        (tmp_path / "study").mkdir()
        prefix = make_uid(71)
        files = [make_instance(tmp_path / "study" / f"{i}.dcm", sop_instance_uid=f"{prefix}.{i}",
                               pixel_bytes=128 * 1024, seed=i) for i in range(200)]
        sender = subprocess.Popen(
            ["storescu", "-v", "-aet", SENDER, "-aec", CALLED_AE, HOST, str(conduit.port),
             *map(str, files)],
            env=dcmtk_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_until(lambda: metric_value(parse_metrics(conduit.metrics_text()),
                                            "conduit_instances_received_total") >= 20,
                       30, interval=0.01, what="the transfer to be under way")
            # Mid-transfer: destination b is added and the rules now route everything to it.
            assert reload(conduit, {"destinations": [destination("a", a), destination("b", b)]},
                          ("b",), tmp_path) == 1
            output, _ = sender.communicate(timeout=120)
        finally:
            if sender.poll() is None:
                sender.kill()
        assert sender.returncode == 0, output[-3000:]
        assert output.count("Received Store Response (Success)") == 200, output[-3000:]
        assert accepted_associations(conduit, SENDER) == 1, "one association, never dropped"
        assert f"calling={SENDER} " in conduit.log() and "ended: released" in conduit.log()

        # Every acknowledged instance reaches the destination its rules generation chose: the
        # first ones a, the ones after the reload b; none is lost, none goes to both.
        uids = {sop_uid(f) for f in files}
        wait_until(lambda: received_sop_uids(a) | received_sop_uids(b) == uids, 60,
                   interval=0.2, what="all 200 instances at a or b")
        at_a, at_b = received_sop_uids(a), received_sop_uids(b)
        assert at_a and at_b, (len(at_a), len(at_b))
        assert not at_a & at_b
        wait_spool_empty(conduit)

        # The next association is routed by the new rules only.
        later = make_study(tmp_path / "later", 3, tag=72)
        assert run_storescu(conduit.port, later, aet=SENDER).returncode == 0
        later_uids = {sop_uid(f) for f in later}
        wait_until(lambda: later_uids <= received_sop_uids(b), 30, interval=0.2,
                   what="the next association's instances at b")
        assert not later_uids & received_sop_uids(a)
    finally:
        a.stop()
        b.stop()


def test_a_changed_destination_keeps_its_queue_and_delivers_with_the_new_settings(
        start_conduit, tmp_path):
    down = forking_scp(tmp_path, name="scp_down")
    down_port = down.port
    down.stop()  # the configured address answers nothing
    up = forking_scp(tmp_path, name="scp_up")
    try:
        conduit = start_conduit({
            "rules": {"file": str(route_all_rules(tmp_path, "pacs"))},
            "destinations": [{**destination("pacs", up), "port": down_port}]})
        files = make_study(tmp_path / "study", 5, tag=73)
        assert run_storescu(conduit.port, files).returncode == 0
        wait_until(lambda: metric_value(parse_metrics(conduit.metrics_text()),
                                        "conduit_forward_connection_failures_total",
                                        destination="pacs") >= 1,
                   20, what="a failed attempt at the old address")
        assert len(conduit.instances()) == 5

        # The operator fixes the port: the queue is kept and goes to the new address at once.
        assert reload(conduit, {"destinations": [destination("pacs", up)]}) == 1
        wait_until(lambda: received_sop_uids(up) == {sop_uid(f) for f in files}, 30,
                   interval=0.2, what="the queued instances at the new address")
        wait_spool_empty(conduit)
        assert "destination pacs changed" in conduit.log()
    finally:
        up.stop()


def test_a_removed_destination_keeps_its_queue_until_configured_again(start_conduit, tmp_path):
    scp = forking_scp(tmp_path, name="scp")
    port = scp.port
    scp.stop()
    other = forking_scp(tmp_path, name="scp_other")
    try:
        conduit = start_conduit({
            "rules": {"file": str(route_all_rules(tmp_path, "pacs"))},
            "destinations": [destination("pacs", scp), destination("other", other)]})
        files = make_study(tmp_path / "study", 3, tag=74)
        assert run_storescu(conduit.port, files).returncode == 0

        assert reload(conduit, {"destinations": [destination("other", other)]},
                      ("other",), tmp_path) == 1
        listing = queue_cli(conduit, "list")
        line = next(l for l in listing.stdout.splitlines() if l.startswith("pacs "))
        assert "not-configured" in line and " 3 " in line, listing.stdout
        assert len(conduit.instances()) == 3

        # Configured again (now reachable): the kept queue is delivered.
        scp.start()
        assert scp.port == port
        assert reload(conduit, {"destinations": [destination("pacs", scp),
                                                 destination("other", other)]},
                      ("pacs", "other"), tmp_path) == 2
        wait_until(lambda: received_sop_uids(scp) == {sop_uid(f) for f in files}, 30,
                   interval=0.2, what="the kept queue delivered")
        wait_spool_empty(conduit)
    finally:
        scp.stop()
        other.stop()


def test_an_invalid_configuration_is_refused_and_the_old_one_stays(start_conduit, tmp_path):
    scp = forking_scp(tmp_path, name="scp")
    try:
        conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "pacs"))},
                                 "destinations": [destination("pacs", scp)]})
        good = conduit.config_path.read_text()
        # A typo on line 3: refused with file:line:column, nothing changes.
        conduit.config_path.write_text("destinations:\n  - name: pacs\n    hots: 127.0.0.1\n")
        conduit.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: metric_value(parse_metrics(conduit.metrics_text()),
                                        "conduit_config_reloads_total", result="failed") == 1,
                   15, what="the refusal to be counted")
        assert f"{conduit.config_path}:3:5: " in conduit.log()
        assert "unknown key 'hots'" in conduit.log()
        assert "the running configuration stays" in conduit.log()
        conduit.config_path.write_text(good)

        files = make_study(tmp_path / "study", 2, tag=75)
        assert run_storescu(conduit.port, files).returncode == 0
        wait_until(lambda: received_sop_uids(scp) == {sop_uid(f) for f in files}, 30,
                   interval=0.2, what="delivery under the old configuration")
        assert metric_value(parse_metrics(conduit.metrics_text()), "conduit_config_reloads_total",
                            result="ok") == 0
    finally:
        scp.stop()
