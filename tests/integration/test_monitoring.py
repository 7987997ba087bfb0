"""Monitoring (issue 7): the metrics follow Prometheus conventions, the alert rules and their unit
tests pass promtool, and the Grafana dashboard asks only for metrics a live router exposes.

One router is shared by the module, scraped every second by a real Prometheus (Debian's, on
loopback) that loads the alert rules. Before anything is checked the router handles enough
traffic that every metric family the dashboard and the alerts use has series: instances from
storescu routed to a DIMSE storescp, a folder, a folder behind a JPEG-LS transcode, a STOW-RS
stub that answers 400 (dead letters, HTTP responses by code) and a folder that does not exist
(circuit open, failed probes); one instance a discard rule drops; a C-ECHO, a rejected and an
aborted association, and a rules reload that fails (so the rules stay stale). Prometheus then
answers every dashboard query with data and shows the alerts that traffic must raise, and no
others.

promtool and prometheus come from Debian's `prometheus` package (scripts/install-deps)."""
from __future__ import annotations

import http.server
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import dicom_ul as ul
from conftest import (HOST, StoreScp, free_port, kill_process, make_instance, make_uid,
                      metric_value, parse_metrics, run_echoscu, run_storescu, running_conduit,
                      wait_until)

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
ALERTS = MONITORING / "prometheus" / "conduit-alerts.yml"
ALERT_TESTS = MONITORING / "prometheus" / "conduit-alerts.test.yml"
DASHBOARD = MONITORING / "grafana" / "conduit-dashboard.json"

JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
FAST_RETRY = {"initial_delay_ms": 100, "max_delay_seconds": 1, "breaker_failures": 2}
INSTANCES = 4
SENDER_AE = "MONITORSCU"

# A label value that looks like a DICOM UID: never allowed, not even a transfer syntax's (the
# transcode counter labels syntaxes by PS3.6 keyword).
UID_LIKE = re.compile(r"^[0-9]+(\.[0-9]+){2,}$")
# Far above what this traffic makes; a family past it has an unbounded label.
MAX_SERIES_PER_FAMILY = 200
# Families prometheus-cpp's exposer adds about itself; not ours to name.
LIBRARY_PREFIX = "exposer_"


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool not found: install Debian's `prometheus` package (scripts/install-deps)"
    return path


def run_promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], input=stdin, capture_output=True, text=True,
                          timeout=60)


# ------------------------------------------------------------------------------------------
# a router that has seen some traffic


class StowStub(http.server.ThreadingHTTPServer):
    """A DICOMweb endpoint that reads each STOW-RS request and answers 400: every instance is
    refused for good (a dead letter) and each answer is counted by HTTP code."""

    daemon_threads = True

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                while length > 0:
                    chunk = self.rfile.read(min(length, 1 << 16))
                    if not chunk:
                        break
                    length -= len(chunk)
                body = b'{"error": "refused by the monitoring test"}'
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__((HOST, free_port()), Handler)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/dicom-web"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class Prometheus:
    """`prometheus` scraping one router every second and evaluating the alert rules every
    second, on loopback, with its TSDB in a temporary directory; ended by its pid."""

    def __init__(self, workdir: Path, metrics_port: int):
        binary = shutil.which("prometheus")
        assert binary, "prometheus not found: install Debian's `prometheus` package"
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{json.dumps(str(ALERTS))}]\n"
            "scrape_configs:\n"
            "  - job_name: conduit\n"
            f"    static_configs: [{{targets: ['{HOST}:{metrics_port}']}}]\n")
        self.log_path = workdir / "prometheus.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
                 f"--web.listen-address={HOST}:{self.port}", "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(self._ready, 20, interval=0.2, what="prometheus to be ready")
        except BaseException:
            self.stop()
            raise

    def _get(self, path: str, **params) -> dict:
        url = f"http://{HOST}:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as rsp:
            return json.loads(rsp.read().decode())

    def _ready(self) -> bool:
        assert self.proc.poll() is None, f"prometheus exited: {self.log_path.read_text()}"
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.port}/-/ready", timeout=2) as rsp:
                return rsp.status == 200
        except OSError:
            return False

    def query(self, expr: str) -> list[dict]:
        answer = self._get("/api/v1/query", query=expr)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def alerts(self) -> list[dict]:
        return self._get("/api/v1/alerts")["data"]["alerts"]

    def scraped_samples(self) -> int:
        """Scrapes of the router so far (count of `up` samples over the last minute)."""
        result = self.query('count_over_time(up{job="conduit"}[1m])')
        return int(float(result[0]["value"][1])) if result else 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill_process(self.proc)


RULES = """version: 1
rules:
  - name: drop-from-discardscu
    when: { calling_ae: { in: [DISCARDSCU] } }
    discard: true
  - name: everything
    route:
      - pacs
      - export
      - destination: export_jls
        transcode: jls
      - archive
      - unmounted
"""


@pytest.fixture(scope="module")
def busy(tmp_path_factory):
    """(conduit, scrape text, prometheus) after the traffic described in the module
    docstring."""
    tmp = tmp_path_factory.mktemp("monitoring")
    scp = StoreScp(tmp, fork=True)
    stow = StowStub()
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    folder = {"type": "folder", "retry": dict(FAST_RETRY)}
    overrides = {
        "rules": {"file": str(rules), "reload_check_seconds": 1},
        "destinations": [
            {"name": "pacs", "host": HOST, "port": scp.port, "called_ae": "STORESCP",
             "retry": dict(FAST_RETRY)},
            {**folder, "name": "export", "path": str(tmp / "export")},
            {**folder, "name": "export_jls", "path": str(tmp / "export-jls")},
            {**folder, "name": "unmounted", "path": str(tmp / "not-mounted")},
            {"name": "archive", "type": "stow", "url": stow.url, "parallel_requests": 1,
             "connect_timeout_seconds": 2, "request_timeout_seconds": 10,
             "retry": dict(FAST_RETRY)},
        ],
        "transcoding": {"profiles": [{"name": "jls", "transfer_syntax": JPEG_LS_LOSSLESS}]},
    }
    (tmp / "export").mkdir()
    (tmp / "export-jls").mkdir()
    prometheus = None
    try:
        with running_conduit(tmp / "conduit", overrides) as conduit:
            # Scraping from before the traffic, so that increase() sees every counter move.
            prometheus = Prometheus(tmp / "prometheus", conduit.metrics_port)
            wait_until(lambda: prometheus.scraped_samples() >= 2, 15, interval=0.2,
                       what="prometheus to scrape the router")
            prefix = make_uid(71)
            files = [make_instance(tmp / f"m{i}.dcm", sop_instance_uid=f"{prefix}.{i}",
                                   pixel_bytes=256 * 32, seed=i) for i in range(INSTANCES)]
            done = run_storescu(conduit.port, files, aet=SENDER_AE)
            assert done.returncode == 0, done.stderr
            dropped = make_instance(tmp / "dropped.dcm", sop_instance_uid=f"{prefix}.99",
                                    pixel_bytes=1024)
            done = run_storescu(conduit.port, [dropped], aet="DISCARDSCU")
            assert done.returncode == 0, done.stderr
            assert run_echoscu(conduit.port).returncode == 0
            with pytest.raises(ul.Rejected):
                conduit.associate(called_ae="NOTCONDUIT")
            conduit.associate(contexts=[(1, ul.VERIFICATION_SOP_CLASS,
                                         [ul.IMPLICIT_VR_LE])]).abort()
            # A rules file that does not parse is refused when the router notices the change;
            # the old rules stay in force (stale).
            rules.write_text("version: 1\nrules: [\n")
            scrape = lambda: parse_metrics(conduit.metrics_text())  # noqa: E731
            wait_until(lambda: metric_value(scrape(), "conduit_rules_reloads_total",
                                            result="failed") >= 1, 10, interval=0.1,
                       what="the broken rules file to be refused")

            def settled():
                m = scrape()
                delivered = all(metric_value(m, "conduit_forward_delivered_total",
                                             destination=d) == INSTANCES
                                for d in ("pacs", "export", "export_jls"))
                return (delivered and
                        metric_value(m, "conduit_forward_dead_lettered_total",
                                     destination="archive") == INSTANCES and
                        metric_value(m, "conduit_forward_circuit_state",
                                     destination="unmounted") >= 1 and
                        metric_value(m, "conduit_forward_probes_total",
                                     destination="unmounted") >= 1 and
                        metric_value(m, "conduit_associations_aborted_total") >= 1 and
                        metric_value(m, "conduit_instances_discarded_total") == 1)

            wait_until(settled, 20, interval=0.2, what="deliveries, dead letters, an open circuit")
            # Two more scrapes after the traffic settled: every rate() has its samples.
            scraped = prometheus.scraped_samples()
            wait_until(lambda: prometheus.scraped_samples() >= scraped + 2, 15, interval=0.2,
                       what="prometheus to scrape the settled router")
            yield conduit, conduit.metrics_text(), prometheus
    finally:
        if prometheus:
            prometheus.stop()
        stow.stop()
        scp.stop()


@pytest.fixture(scope="module")
def scrape_text(busy) -> str:
    return busy[1]


@pytest.fixture(scope="module")
def prometheus(busy) -> Prometheus:
    return busy[2]


def families(text: str) -> dict[str, str]:
    """Family name -> type, from the # TYPE lines."""
    out = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            out[name] = kind
    return out


def sample_names(text: str) -> set[str]:
    return {name for name, _, _ in parse_metrics(text)}


# ------------------------------------------------------------------------------------------
# metrics hygiene


def test_live_scrape_passes_promtool_check_metrics(scrape_text):
    done = run_promtool("check", "metrics", stdin=scrape_text)
    problems = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 0 and not problems, "\n".join(problems)


def test_scrape_has_the_families_the_dashboard_relies_on(scrape_text):
    names = sample_names(scrape_text)
    for needed in ("conduit_transcodes_total", "conduit_transcode_frame_seconds_bucket",
                   "conduit_forward_http_responses_total", "conduit_forward_dead_lettered_total",
                   "conduit_associations_aborted_total", "conduit_associations_rejected_total",
                   "conduit_forward_probes_total", "conduit_rules_reloads_total",
                   "conduit_cecho_total"):
        assert needed in names, f"{needed} has no series after the traffic"


def test_metric_names_follow_conventions(scrape_text):
    kinds = {n: k for n, k in families(scrape_text).items() if not n.startswith(LIBRARY_PREFIX)}
    assert kinds, "no # TYPE lines in the scrape"
    for name, kind in kinds.items():
        assert name.startswith("conduit_"), name
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), f"{name}: not snake_case"
        if kind == "counter":
            assert name.endswith("_total"), f"counter {name} must end in _total"
        else:
            assert not name.endswith("_total"), f"{kind} {name} must not end in _total"
        if kind == "histogram":
            assert name.endswith(("_seconds", "_bytes", "_ratio")), \
                f"histogram {name} must name its unit"
        # Base units only: seconds and bytes, never milliseconds or kibibytes.
        assert not re.search(r"_(milli|micro|nano)?(ms|us|ns|millis|milliseconds|kib|mib|kb|mb)"
                             r"(_|$)", name), f"{name}: not a base unit"
    help_lines = {line.split(None, 3)[2] for line in scrape_text.splitlines()
                  if line.startswith("# HELP ")}
    assert set(kinds) <= help_lines, f"families without HELP: {set(kinds) - help_lines}"


def test_no_uid_label_values_and_bounded_cardinality(scrape_text):
    samples = parse_metrics(scrape_text)
    per_family: dict[str, int] = {}
    for name, labels, _ in samples:
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        per_family[family] = per_family.get(family, 0) + 1
        for key, value in labels.items():
            assert "uid" not in key.lower(), f"{name} has a UID label {key}"
            assert not UID_LIKE.match(value), f"UID-like label value {key}={value!r} on {name}"
    too_many = {f: n for f, n in per_family.items() if n > MAX_SERIES_PER_FAMILY}
    assert not too_many, f"families with too many series: {too_many}"
    # Transfer syntaxes by PS3.6 keyword.
    assert metric_value(samples, "conduit_transcodes_total", source="ExplicitVRLittleEndian",
                        target="JPEGLSLossless", outcome="ok") == INSTANCES
    # Every label value is one of a fixed vocabulary, or configured (destination, rule names),
    # or the calling AE (capped at 100 values by the router).
    vocabulary = {
        "state": {"ready", "retry_wait", "held", "in_flight", "dead_letter"},
        "result": {"ok", "failed", "answered"},
        "outcome": {"ok", "failed"},
        "destination": {"pacs", "export", "export_jls", "unmounted", "archive"},
        "rule": {"everything", "drop-from-discardscu"},
        "calling_ae": {SENDER_AE, "DISCARDSCU"},
    }
    for name, labels, _ in samples:
        for key, allowed in vocabulary.items():
            if key in labels:
                assert labels[key] in allowed, f"{name}: {key}={labels[key]!r}"
        if "status" in labels:
            assert re.fullmatch(r"0x[0-9A-F]{4}|other", labels["status"]), labels
        if "code" in labels:
            assert re.fullmatch(r"[1-5][0-9][0-9]|other", labels["code"]), labels


# ------------------------------------------------------------------------------------------
# alert rules


def test_alert_rules_pass_promtool_check_rules():
    done = run_promtool("check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout, done.stdout


def test_alert_rules_unit_tests_pass():
    done = run_promtool("test", "rules", str(ALERT_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout, done.stdout


EXPECTED_ALERTS = {"ConduitDestinationStuck", "ConduitQueueOldestItemAge", "ConduitDeadLetters",
                   "ConduitDiskLow", "ConduitSpoolRefusing", "ConduitRulesReloadFailed",
                   "ConduitRulesStale", "ConduitDown"}


def test_alert_rules_cover_the_runbook_and_use_exposed_metrics(scrape_text):
    text = ALERTS.read_text()
    alerts = set(re.findall(r"^\s*- alert:\s*(\S+)", text, re.M))
    assert EXPECTED_ALERTS <= alerts, f"missing alerts: {EXPECTED_ALERTS - alerts}"
    # Every alert has a summary, a description and a runbook hint.
    blocks = re.split(r"^\s*- alert:", text, flags=re.M)[1:]
    for block in blocks:
        name = block.split()[0]
        for key in ("summary:", "description:", "runbook:"):
            assert key in block, f"{name} has no {key} annotation"
    # Each alert unit-tested at least once.
    tested = set(re.findall(r"alertname:\s*(\S+)", ALERT_TESTS.read_text()))
    assert alerts <= tested, f"alerts without a unit test: {alerts - tested}"
    unknown = metric_names_in(text) - exposed_metric_names(scrape_text)
    assert not unknown, f"alert rules use metrics the router does not expose: {unknown}"


# ------------------------------------------------------------------------------------------
# dashboard


def exposed_metric_names(text: str) -> set[str]:
    """Every name a query may use: the families and, for histograms, their sample names."""
    return set(families(text)) | sample_names(text)


def metric_names_in(promql: str) -> set[str]:
    return set(re.findall(r"\bconduit_[a-z0-9_]+", promql))


def dashboard_panels(dashboard: dict) -> list[dict]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows keep theirs inside
    return panels


def dashboard_exprs(dashboard: dict) -> list[tuple[str, str]]:
    return [(panel.get("title", "?"), target["expr"]) for panel in dashboard_panels(dashboard)
            for target in panel.get("targets", []) if target.get("expr")]


def variable_query(variable: dict) -> str:
    query = variable["query"]
    return query["query"] if isinstance(query, dict) else query


def test_dashboard_is_grafana_json_with_datasource_and_destination_variables():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"] and dashboard["schemaVersion"] >= 36
    assert any(i.get("name") == "DS_PROMETHEUS" and i.get("pluginId") == "prometheus"
               for i in dashboard.get("__inputs", []))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["datasource"]["current"]["value"] == "${DS_PROMETHEUS}"
    destination = variables["destination"]
    assert re.fullmatch(r'label_values\(conduit_forward_queue_depth(\{instance=~"\$instance"\})?, '
                        r'destination\)', variable_query(destination)), variable_query(destination)
    assert destination.get("includeAll") and destination.get("multi")
    assert destination.get("allValue") == ".*"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${datasource}", variable["name"]
    ids = [p["id"] for p in dashboard_panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in dashboard_panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel.get("targets"), f"panel {panel.get('title')!r} has no query"
        assert panel["datasource"]["uid"] == "${datasource}", panel.get("title")
        assert panel.get("description"), f"panel {panel.get('title')!r} has no description"


def test_dashboard_covers_what_an_operator_watches():
    dashboard = json.loads(DASHBOARD.read_text())
    used = set().union(*(metric_names_in(expr) for _, expr in dashboard_exprs(dashboard)))
    for needed in ("conduit_instances_received_total", "conduit_received_bytes_total",
                   "conduit_cstore_responses_total", "conduit_associations_rejected_total",
                   "conduit_associations_aborted_total", "conduit_forward_delivered_total",
                   "conduit_forward_queue_depth", "conduit_forward_oldest_item_age_seconds",
                   "conduit_forward_circuit_state", "conduit_forward_dead_lettered_total",
                   "conduit_forward_http_responses_total", "conduit_forward_send_seconds_bucket",
                   "conduit_transcode_frame_seconds_bucket", "conduit_transcodes_total",
                   "conduit_transcode_workers_busy", "conduit_transcode_workers",
                   "conduit_spool_bytes", "conduit_disk_free_bytes", "conduit_config_limit",
                   "conduit_rules_generation", "conduit_rules_stale",
                   "conduit_rules_reloads_total"):
        assert needed in used, f"no dashboard panel shows {needed}"


def test_dashboard_queries_use_only_exposed_metrics(scrape_text):
    dashboard = json.loads(DASHBOARD.read_text())
    exposed = exposed_metric_names(scrape_text)
    exprs = dashboard_exprs(dashboard)
    assert len(exprs) >= 20
    for title, expr in exprs:
        unknown = metric_names_in(expr) - exposed
        assert not unknown, f"panel {title!r} queries {unknown}, not in a live scrape"
        if "histogram_quantile" in expr:
            assert "_bucket" in expr, f"panel {title!r}: histogram_quantile without _bucket"


def test_dashboard_queries_are_valid_promql(tmp_path):
    """promtool parses each panel query (and each variable query's selector) as a recording rule,
    with Grafana's variables replaced by what Grafana would put there."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [expr for _, expr in dashboard_exprs(dashboard)]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            m = re.fullmatch(r"label_values\((.+), *[a-z_]+\)", variable_query(variable))
            assert m, variable_query(variable)
            exprs.append(m.group(1))
    replacements = {"$instance": "(router1:9112|router2:9112)", "$destination": "(pacs|export)"}
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, expr in enumerate(exprs):
        expr = grafana_to_promql(expr, replacements)
        lines += [f"      - record: conduit:dashboard_query_{i}:test",
                  f"        expr: {json.dumps(expr)}"]
    rules = tmp_path / "dashboard-rules.yml"
    rules.write_text("\n".join(lines) + "\n")
    done = run_promtool("check", "rules", str(rules))
    assert done.returncode == 0, done.stdout + done.stderr


def grafana_to_promql(expr: str, variables: dict[str, str], rate_interval: str = "1m") -> str:
    """What Grafana sends for `expr`: its interval variables and the template variables (a
    multi-value or All selection as a regular expression) replaced."""
    for variable, value in {"$__rate_interval": rate_interval, "$__interval": rate_interval,
                            "$__range": "1h", **variables}.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unreplaced Grafana variable in {expr!r}"
    return expr


# ------------------------------------------------------------------------------------------
# the dashboard and the alerts against a real Prometheus scraping the router


def test_every_dashboard_query_returns_data_from_prometheus(prometheus):
    dashboard = json.loads(DASHBOARD.read_text())
    empty = []
    for title, expr in dashboard_exprs(dashboard):
        # "All" selected, as on first load; a window of several 1 s scrapes.
        promql = grafana_to_promql(expr, {"$instance": ".*", "$destination": ".*"}, "10s")
        if not prometheus.query(promql):
            empty.append(f"{title}: {promql}")
    assert not empty, "queries with no result:\n" + "\n".join(empty)
    destinations = prometheus.query(
        'group by (destination) (conduit_forward_queue_depth{instance=~".*"})')
    assert {r["metric"]["destination"] for r in destinations} == \
        {"pacs", "export", "export_jls", "unmounted", "archive"}


def test_the_traffic_raises_exactly_the_expected_alerts(prometheus):
    """Dead letters and the refused rules file fire at once; the unreachable folder and the
    stale rules wait out their `for`; the healthy destinations raise nothing."""
    expected = {
        ("ConduitDeadLetters", "archive", "firing"),
        ("ConduitRulesReloadFailed", None, "firing"),
        ("ConduitRulesStale", None, "pending"),
        ("ConduitDestinationStuck", "unmounted", "pending"),  # circuit open, no deliveries
    }

    def seen():
        return {(a["labels"]["alertname"], a["labels"].get("destination"), a["state"])
                for a in prometheus.alerts()}

    # Bounded wait for exactly these: an alert of the traffic's first seconds (a destination
    # owing instances it has not confirmed yet) may still be pending until the next evaluation.
    deadline = time.monotonic() + 15
    while (got := seen()) != expected and time.monotonic() < deadline:
        time.sleep(0.25)
    assert got == expected, f"missing: {expected - got}, unexpected: {got - expected}"
    stuck = [a for a in prometheus.alerts()
             if a["labels"]["alertname"] == "ConduitDestinationStuck"]
    assert {a["labels"]["cause"] for a in stuck} == {"circuit_open", "no_deliveries"}, stuck
