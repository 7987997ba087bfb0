"""Routing rules in the real daemon: routes recorded with each instance, hot reload, discard,
and the `conduit rules check` / `conduit rules explain` commands."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pydicom
import pytest

from conftest import (CONDUIT_BIN, metric_value, parse_metrics, read_part10, run_storescu,
                      wait_until)

CORPUS = Path("/usr/lib/python3/dist-packages/pydicom/data/test_files")
# Real corpus files of known modality, in uncompressed syntaxes storescu sends as they are.
CT_FILE = CORPUS / "CT_small.dcm"
MR_FILE = CORPUS / "MR_small.dcm"
OTHER_FILE = CORPUS / "rtplan.dcm"  # RTPLAN

# Nothing listens on port 1: the instances stay queued in the spool, where the tests read their
# records.
DESTINATIONS = [{"name": n, "host": "127.0.0.1", "port": 1, "called_ae": n}
                for n in ("CT_ARCHIVE", "MR_ARCHIVE", "RESEARCH", "CATCH_ALL")]

RULES = """\
version: 1
default:
  route: [CATCH_ALL]
rules:
  - name: ct
    when:
      attribute: Modality
      equals: CT
    route: [CT_ARCHIVE]
  - name: mr
    when: { attribute: Modality, equals: MR }
    route:
      - destination: MR_ARCHIVE
        priority: 5
  - name: research-copy
    when:
      calling_ae: { in: [RESEARCHSCU] }
    route:
      - destination: RESEARCH
        edits:
          - prefix: { attribute: PatientID, value: "SITEA-" }
          - delete: { attribute: PatientName }
"""

RULES_V2 = """\
version: 1
rules:
  - name: everything-to-research
    route: [RESEARCH]
"""

BROKEN_RULES = """\
version: 1
rules:
  - name: bad
    when: { attribute: NoSuchKeyword, equals: X }
    route: [NOWHERE]
"""


def records(conduit) -> dict[str, dict]:
    """SOP Instance UID -> {'fields': {...}, 'routes': [...], 'edits': [...]} from the spool."""
    out = {}
    for path in conduit.instances():
        lines = read_part10(path).private_information_lines()
        fields, routes, edits = {}, [], []
        for line in lines:
            key, _, value = line.partition("=")
            if key == "route":
                routes.append(value.split("|"))
            elif key == "edit":
                edits.append(value.split("|"))
            else:
                fields[key] = value
        out[fields["sop_instance_uid"]] = {"fields": fields, "routes": routes, "edits": edits}
    return out


def sop_uid(path: Path) -> str:
    return str(pydicom.dcmread(str(path), stop_before_pixels=True).SOPInstanceUID)


def start_with_rules(start_conduit, tmp_path, text: str, **extra):
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(text)
    overrides = {"destinations": DESTINATIONS,
                 "rules": {"file": str(rules_path), "reload_check_seconds": 1}}
    overrides.update(extra)
    return start_conduit(overrides), rules_path


def send(conduit, files, aet="STORESCU"):
    res = run_storescu(conduit.port, files, aet=aet)
    assert res.returncode == 0, res.stderr[-3000:]


def test_routes_by_modality_and_calling_ae_are_stored_with_the_instance(start_conduit, tmp_path):
    conduit, _ = start_with_rules(start_conduit, tmp_path, RULES)
    send(conduit, [CT_FILE, MR_FILE, OTHER_FILE])
    send(conduit, [CT_FILE.parent / "SC_rgb_small_odd.dcm"], aet="RESEARCHSCU")
    got = records(conduit)

    ct = got[sop_uid(CT_FILE)]
    assert [r[0] for r in ct["routes"]] == ["CT_ARCHIVE"], ct["routes"]
    assert ct["routes"][0][5] == "ct"  # the rule that routed it
    assert ct["fields"]["rules_generation"] == "1"

    mr = got[sop_uid(MR_FILE)]
    assert [r[0] for r in mr["routes"]] == ["MR_ARCHIVE"]
    assert mr["routes"][0][1] == "5"  # priority

    other = got[sop_uid(OTHER_FILE)]
    assert [r[0] for r in other["routes"]] == ["CATCH_ALL"], "the default route catches the rest"

    research = got[sop_uid(CT_FILE.parent / "SC_rgb_small_odd.dcm")]
    destinations = [r[0] for r in research["routes"]]
    assert "RESEARCH" in destinations, research
    research_index = str(destinations.index("RESEARCH"))
    kinds = sorted((e[1], e[2]) for e in research["edits"] if e[0] == research_index)
    assert kinds == [("delete", "PatientName"), ("prefix", "PatientID")], research["edits"]
    prefix = next(e for e in research["edits"] if e[1] == "prefix")
    assert prefix[3] == "SITEA-"

    samples = parse_metrics(conduit.metrics_text())
    assert metric_value(samples, "conduit_rule_matches_total", rule="ct") >= 1
    assert metric_value(samples, "conduit_rule_matches_total", rule="research-copy") == 1
    assert metric_value(samples, "conduit_instances_default_routed_total") >= 1
    assert metric_value(samples, "conduit_rules_generation") == 1


def test_no_rules_keeps_everything_without_routes(conduit):
    send(conduit, [CT_FILE])
    (record,) = records(conduit).values()
    assert record["routes"] == []
    assert record["fields"]["rules_generation"] == "0"


def test_reload_changes_routing_for_the_next_association_and_refuses_broken_files(
        start_conduit, tmp_path):
    conduit, rules_path = start_with_rules(start_conduit, tmp_path, RULES)
    send(conduit, [CT_FILE])
    assert [r[0] for r in records(conduit)[sop_uid(CT_FILE)]["routes"]] == ["CT_ARCHIVE"]

    # A valid new file is picked up (file watch), and the next association uses it.
    rules_path.write_text(RULES_V2)
    wait_until(lambda: metric_value(parse_metrics(conduit.metrics_text()),
                                    "conduit_rules_generation") == 2,
               timeout=15, what="the rules reload")
    send(conduit, [MR_FILE])
    assert [r[0] for r in records(conduit)[sop_uid(MR_FILE)]["routes"]] == ["RESEARCH"]

    # A broken file is refused: the old rules stay, the error is logged, the stale gauge is set.
    rules_path.write_text(BROKEN_RULES)
    conduit.proc.send_signal(1)  # SIGHUP, as `systemctl reload` does
    wait_until(lambda: metric_value(parse_metrics(conduit.metrics_text()),
                                    "conduit_rules_stale") == 1,
               timeout=15, what="the stale gauge")
    assert "NoSuchKeyword" in conduit.log()
    assert "rules.yaml:4:" in conduit.log(), "the refusal names file:line"
    samples = parse_metrics(conduit.metrics_text())
    assert metric_value(samples, "conduit_rules_generation") == 2
    assert metric_value(samples, "conduit_rules_reloads_total", result="failed") >= 1
    send(conduit, [OTHER_FILE])
    assert [r[0] for r in records(conduit)[sop_uid(OTHER_FILE)]["routes"]] == ["RESEARCH"]


def test_discard_acknowledges_and_keeps_nothing(start_conduit, tmp_path):
    rules = """\
version: 1
rules:
  - name: drop-rtplans
    when: { attribute: Modality, in: [RTPLAN, KO] }
    discard: true
  - name: keep
    route: [CATCH_ALL]
"""
    conduit, _ = start_with_rules(start_conduit, tmp_path, rules)
    res = run_storescu(conduit.port, [OTHER_FILE, CT_FILE], "-v")
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stderr.count("Received Store Response (Success)") == 2
    assert set(records(conduit)) == {sop_uid(CT_FILE)}
    samples = parse_metrics(conduit.metrics_text())
    assert metric_value(samples, "conduit_instances_discarded_total", rule="drop-rtplans") == 1


def test_invalid_rules_stop_the_router_with_file_line_column(tmp_path):
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(BROKEN_RULES)
    config = tmp_path / "conduit.yaml"
    config.write_text(f'{{"rules": {{"file": "{rules_path}"}}, '
                      f'"destinations": [{{"name": "CT_ARCHIVE", "host": "127.0.0.1", '
                      f'"called_ae": "ARCHIVE"}}], '
                      f'"spool": {{"directory": "{tmp_path / "spool"}"}}, '
                      f'"metrics": {{"enabled": false}}}}\n')
    res = subprocess.run([CONDUIT_BIN, "serve", "--config", str(config)], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 2, res.stderr
    assert f"{rules_path}:4:" in res.stderr, res.stderr
    assert "NOWHERE" in res.stderr


def test_rules_check_and_explain_commands(tmp_path):
    config = tmp_path / "conduit.yaml"
    config.write_text('{"destinations": ' + str(DESTINATIONS).replace("'", '"') + "}\n")
    good = tmp_path / "good.yaml"
    good.write_text(RULES)
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN_RULES)

    ok = subprocess.run([CONDUIT_BIN, "rules", "check", "--config", str(config), str(good)],
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout

    refused = subprocess.run([CONDUIT_BIN, "rules", "check", "--config", str(config), str(bad)],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2
    lines = [l for l in refused.stderr.splitlines() if l.startswith(str(bad) + ":")]
    assert any("NoSuchKeyword" in l for l in lines), refused.stderr
    assert any("NOWHERE" in l for l in lines), "every error is reported, not just the first"

    explained = subprocess.run(
        [CONDUIT_BIN, "rules", "explain", "--config", str(config), "--rules", str(good),
         "--calling-ae", "RESEARCHSCU", str(CT_FILE), str(MR_FILE)],
        capture_output=True, text=True, timeout=60)
    assert explained.returncode == 0, explained.stderr
    out = explained.stdout
    assert f"== {CT_FILE}" in out and f"== {MR_FILE}" in out
    ct_part = out.split(f"== {MR_FILE}")[0]
    # Each rule is listed with the value it saw, and the result names the destinations.
    for name in ("ct", "mr", "research-copy"):
        assert name in ct_part
    assert "CT" in ct_part and "CT_ARCHIVE" in ct_part and "RESEARCH" in ct_part


def test_whole_corpus_routed_by_modality_and_calling_ae(start_conduit, tmp_path):
    """Every corpus file, in its own transfer syntax, half the syntaxes sent by a research AE:
    each spooled instance's recorded routes are exactly what the rules say for its Modality
    (read independently with pydicom from the stored file) and its calling AE."""
    from test_corpus import STORESCU_PROPOSE, corpus_by_transfer_syntax

    conduit, _ = start_with_rules(start_conduit, tmp_path, RULES)
    groups = corpus_by_transfer_syntax()
    for index, (ts, files) in enumerate(sorted(groups.items())):
        aet = "RESEARCHSCU" if index % 2 == 0 else "CORPUSSCU"
        run_storescu(conduit.port, files, "-R", "-nh", STORESCU_PROPOSE[ts], aet=aet)

    stored = conduit.instances()
    assert len(stored) >= 100, "the corpus must really have been stored"
    seen_destinations = set()
    for path in stored:
        record = read_part10(path)
        fields = record.private_information()
        routes = [line.split("=", 1)[1].split("|")[0]
                  for line in record.private_information_lines() if line.startswith("route=")]
        modality = str(pydicom.dcmread(str(path), stop_before_pixels=True).get("Modality", ""))
        expected = set()
        if modality == "CT":
            expected.add("CT_ARCHIVE")
        if modality == "MR":
            expected.add("MR_ARCHIVE")
        if fields["calling_ae"] == "RESEARCHSCU":
            expected.add("RESEARCH")
        if not expected:
            expected.add("CATCH_ALL")
        assert set(routes) == expected and len(routes) == len(expected), (
            f"{path.name}: modality={modality!r} calling={fields['calling_ae']}: "
            f"routes {routes}, expected {sorted(expected)}")
        seen_destinations.update(routes)
    # The corpus exercises every rule and the default.
    assert seen_destinations == {"CT_ARCHIVE", "MR_ARCHIVE", "RESEARCH", "CATCH_ALL"}
