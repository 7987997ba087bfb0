"""`conduit status`: the running daemon at a glance over the admin socket, and the command's
usage and exit codes (as `conduit queue`: 0 printed, 2 usage or configuration, 3 unreachable)."""
from __future__ import annotations

import json
import signal
import subprocess

from conftest import CONDUIT_BIN, run_storescu, wait_until
from test_forwarding import destination, forking_scp, make_study, route_all_rules


def status_cli(conduit, *args: str) -> subprocess.CompletedProcess:
    config = conduit.workdir / "status-cli.yaml"
    config.write_text(json.dumps({"admin": {"socket": str(conduit.workdir / "var/admin.sock")}}))
    return subprocess.run([CONDUIT_BIN, "status", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=30)


def status_showing(conduit, text: str) -> subprocess.CompletedProcess:
    """`conduit status`, asked until its output contains `text` (bounded)."""
    def shows():
        res = status_cli(conduit)
        return res if text in res.stdout else None
    return wait_until(shows, 15, what=f"status to show {text!r}")


def lines_of(res: subprocess.CompletedProcess) -> dict[str, str]:
    """The status's lines by their first word ("listener:", "spool:", ...)."""
    return {line.split(" ", 1)[0]: line for line in res.stdout.splitlines() if line}


def test_status_summarises_listener_rules_spool_destinations_and_transcoding(
        start_conduit, tmp_path):
    scp = forking_scp(tmp_path, name="scp")
    try:
        rules = route_all_rules(tmp_path, "pacs")
        conduit = start_conduit({"rules": {"file": str(rules)},
                                 "destinations": [destination("pacs", scp)],
                                 "transcoding": {"threads": 2}})
        files = make_study(tmp_path / "study", 2, tag=81)
        assert run_storescu(conduit.port, files).returncode == 0
        association = conduit.associate(calling_ae="STATUSSCU")
        try:
            # storescu's association may take a moment to be counted out.
            res = status_showing(conduit, "; 1/64 associations open")
        finally:
            association.release()
        assert res.returncode == 0, res.stderr
        got = lines_of(res)
        assert got["conduit:"].startswith("conduit: ready, healthy, up "), res.stdout
        assert got["listener:"] == (f"listener: 127.0.0.1:{conduit.port} as CONDUIT; "
                                    "1/64 associations open"), res.stdout
        assert got["config:"] == f"config: {conduit.config_path}", res.stdout
        assert got["rules:"].startswith(f"rules: {rules}; generation 1, loaded "), res.stdout
        assert got["spool:"].startswith("spool: "), res.stdout
        assert "(min 16.0 MiB); accepting" in got["spool:"], res.stdout
        destination_line = next(l for l in res.stdout.splitlines() if l.startswith("  pacs "))
        assert destination_line.split()[:2] == ["pacs", "dimse"], destination_line
        assert got["transcoding:"] == "transcoding: 2 workers, 0 busy, 0 jobs waiting", res.stdout
    finally:
        scp.stop()


def test_status_shows_a_refused_reload_and_stale_rules(start_conduit, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\n")
    conduit = start_conduit({"rules": {"file": str(rules), "reload_check_seconds": 0}})
    rules.write_text("version: 1\nrules:\n  - name: x\n    route: [NOWHERE]\n")
    conduit.proc.send_signal(signal.SIGHUP)

    res = status_showing(conduit, "REFUSED")
    got = lines_of(res)
    assert "rules.yaml:4:" in got["config:"], res.stdout
    assert "generation 1 in force; STALE: the file was refused " in got["rules:"], res.stdout
    assert "(SIGHUP, 1 errors, first: " in got["rules:"], res.stdout


def test_status_help_and_usage_errors():
    res = subprocess.run([CONDUIT_BIN, "status", "--help"], capture_output=True, text=True,
                         timeout=10)
    assert res.returncode == 0 and "Exit status" in res.stdout, res.stdout
    for args in (["--bogus"], ["--config"], ["--config", "a", "--config", "b"]):
        res = subprocess.run([CONDUIT_BIN, "status", *args], capture_output=True, text=True,
                             timeout=10)
        assert res.returncode == 2, (args, res.stderr)
        assert "Usage:" in res.stderr


def test_status_without_a_daemon_exits_3_naming_the_socket(tmp_path):
    socket_path = tmp_path / "nobody.sock"
    config = tmp_path / "conduit.yaml"
    config.write_text(f"admin:\n  socket: {socket_path}\n")
    res = subprocess.run([CONDUIT_BIN, "status", "--config", str(config)], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 3, res.stderr
    assert str(socket_path) in res.stderr
    assert res.stdout == ""


def test_status_with_a_bad_config_exits_2(tmp_path):
    config = tmp_path / "conduit.yaml"
    config.write_text("admin:\n  sokket: /tmp/x.sock\n")
    res = subprocess.run([CONDUIT_BIN, "status", "--config", str(config)], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 2
    assert f"{config}:2:3:" in res.stderr, res.stderr
