"""Command line: --help, --version, SIGTERM, and configuration errors with file:line:column."""

import re
import socket
import subprocess

import pytest

from conftest import CONDUIT_BIN, HOST, run_echoscu


def run_conduit(*args, timeout=15):
    return subprocess.run([CONDUIT_BIN, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_exit_zero(flag):
    res = run_conduit(flag)
    assert res.returncode == 0, res.stderr
    assert (res.stdout + res.stderr).strip(), f"{flag} printed nothing"


def test_sigterm_exits_zero_and_closes_listener(conduit):
    assert run_echoscu(conduit.port).returncode == 0
    assert conduit.stop() == 0, conduit.log()  # SIGTERM, bounded wait
    with pytest.raises(OSError):
        socket.create_connection((HOST, conduit.port), timeout=2).close()


# (name, YAML text, acceptable (line, column) positions: the key's or the value's; None: any)
BAD_CONFIGS = [
    ("unknown top-level key", "network_threads: 2\nfrobnicate: true\n", {(2, 1)}),
    ("unknown nested key", "listener:\n  port: 11112\n  colour: blue\n", {(3, 3)}),
    ("wrong type: port is text", "log_level: info\nlistener:\n  port: eleven\n", {(3, 3), (3, 9)}),
    ("wrong type: bool", "listener:\n  require_called_ae: maybe\n", {(2, 3), (2, 22)}),
    ("wrong type: map where a list goes",
     "listener:\n  allowed_calling_aes:\n    a: b\n", {(2, 3), (3, 5)}),
    ("port out of range", "listener:\n  port: 70000\n", {(2, 3), (2, 9)}),
    ("bad CIDR", "listener:\n  allowed_networks: [\"10.0.0.0/33\"]\n", {(2, 3), (2, 21), (2, 22)}),
    ("bad enum", "listener:\n  sop_classes: some\n", {(2, 3), (2, 16)}),
    ("bad size", "spool:\n  max_bytes: lots\n", {(2, 3), (2, 14)}),
    ("yaml syntax error", "listener:\n  port: [1, 2\nspool: {}\n", None),
]


@pytest.mark.parametrize("name,text,positions", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_reports_file_line_column(tmp_path, name, text, positions):
    path = tmp_path / "bad.yaml"
    # Keep the router off real ports even if it wrongly accepted the file.
    path.write_text(text)
    res = run_conduit("serve", "--config", str(path))
    assert res.returncode != 0, f"{name}: accepted a bad config:\n{res.stderr}"
    found = [(int(m.group(1)), int(m.group(2)))
             for m in re.finditer(re.escape(str(path)) + r":(\d+):(\d+): \S", res.stderr)]
    assert found, f"{name}: no '{path}:LINE:COLUMN: message' on stderr:\n{res.stderr}"
    if positions is not None:
        assert set(found) & positions, (
            f"{name}: expected one of {sorted(positions)}; got {found}:\n{res.stderr}")


def test_missing_config_file(tmp_path):
    path = tmp_path / "nope.yaml"
    res = run_conduit("serve", "--config", str(path))
    assert res.returncode != 0
    assert str(path) in res.stderr


def test_good_config_with_all_keys_is_accepted(start_conduit):
    # Every documented key, spelled as in the contract, must load.
    c = start_conduit({
        "network_threads": 2,
        "log_level": "debug",
        "listener": {
            "require_called_ae": True,
            "allowed_calling_aes": [],
            "allowed_networks": ["127.0.0.0/8"],
            "max_associations": 64,
            "max_associations_per_peer": 16,
            "max_pdu_bytes": 131072,
            "artim_timeout_seconds": 30,
            "idle_timeout_seconds": 300,
            "sop_classes": "standard",
            "transfer_syntax_preference": "sender",
            "accepted_transfer_syntaxes": [],
        },
        "spool": {"max_bytes": "64GiB", "min_free_bytes": "16MiB"},
    })
    assert run_echoscu(c.port).returncode == 0
