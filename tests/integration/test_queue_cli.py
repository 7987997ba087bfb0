"""`conduit queue` without the daemon: usage errors exit 2, an unreachable daemon exits 3 with a
message naming the socket, and against a fake admin socket the words sent (without --config) and
the reply mapped to stdout/exit 0 or stderr/exit 1. The commands themselves, against a running
daemon, are tested with the queues."""

import socket
import subprocess
import threading

import pytest

from conftest import CONDUIT_BIN


def run_conduit(*args, timeout=30):
    return subprocess.run([CONDUIT_BIN, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_queue_without_a_command_prints_usage_and_exits_2():
    res = run_conduit("queue")
    assert res.returncode == 2, res.stderr
    assert "Usage:" in res.stderr and "conduit queue" in res.stderr
    assert res.stdout == ""


def test_queue_help_exits_0_and_documents_the_exit_codes():
    res = run_conduit("queue", "--help")
    assert res.returncode == 0, res.stderr
    for needle in ("list", "show DEST", "retry DEST", "purge DEST", "Exit status", "3 "):
        assert needle in res.stdout, f"{needle!r} missing from:\n{res.stdout}"


USAGE_ERRORS = [
    ["frobnicate"],
    ["list", "pacs"],                           # list takes no DEST
    ["show"],                                   # missing DEST
    ["show", "a", "b"],                         # two DESTs
    ["retry"],
    ["retry", "pacs", "--all"],                 # --all is for purge only
    ["retry", "pacs", "--study"],               # missing UID
    ["purge", "pacs"],                          # purge needs what to drop
    ["purge", "pacs", "--all", "--dead-letter"],
    ["purge", "pacs", "--bogus"],
    ["list", "--config"],                       # missing FILE
]


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=[" ".join(a) for a in USAGE_ERRORS])
def test_usage_errors_exit_2(args):
    res = run_conduit("queue", *args)
    assert res.returncode == 2, f"{args}: {res.returncode}\n{res.stderr}"
    assert "Usage:" in res.stderr, res.stderr


def config_with_socket(tmp_path, socket_path):
    path = tmp_path / "conduit.yaml"
    path.write_text(f"admin:\n  socket: {socket_path}\n")
    return path


@pytest.mark.parametrize("before_verb", [True, False], ids=["config-first", "config-after-verb"])
def test_unreachable_daemon_exits_3_naming_the_socket(tmp_path, before_verb):
    socket_path = tmp_path / "nowhere" / "admin.sock"
    config = config_with_socket(tmp_path, socket_path)
    args = (["--config", str(config), "list"] if before_verb
            else ["list", "--config", str(config)])
    res = run_conduit("queue", *args)
    assert res.returncode == 3, res.stderr
    assert f"cannot reach the conduit daemon at {socket_path}" in res.stderr, res.stderr
    assert "is it running?" in res.stderr, res.stderr


def test_stale_socket_exits_3(tmp_path):
    # A socket file nobody listens on, as a crashed daemon leaves it.
    socket_path = tmp_path / "admin.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(socket_path))
    s.close()
    config = config_with_socket(tmp_path, socket_path)
    res = run_conduit("queue", "--config", str(config), "purge", "pacs", "--study", "1.2.3")
    assert res.returncode == 3, res.stderr
    assert "Connection refused" in res.stderr, res.stderr


def test_bad_config_exits_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("admin:\n  sockett: /tmp/x\n")
    res = run_conduit("queue", "--config", str(path), "list")
    assert res.returncode == 2, res.stderr
    assert str(path) in res.stderr


class FakeDaemon:
    """Answers one admin request the way the daemon's admin socket does, and keeps the words."""

    def __init__(self, path, reply: bytes):
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.listener.settimeout(10)
        self.reply = reply
        self.words = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(10)
            data = b""
            while not (data == b"\n" or data.endswith(b"\n\n")):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.words = data.decode().split("\n")[:-2]
            conn.sendall(self.reply)

    def close(self):
        self.thread.join(timeout=10)
        self.listener.close()


@pytest.mark.parametrize("reply,code", [(b"ok\nretrying 3 items\n", 0),
                                        (b"error\nno destination 'pacs'\n", 1)],
                         ids=["ok", "error"])
def test_words_sent_and_reply_mapped_to_exit_code(tmp_path, reply, code):
    socket_path = tmp_path / "admin.sock"
    config = config_with_socket(tmp_path, socket_path)
    daemon = FakeDaemon(socket_path, reply)
    try:
        res = run_conduit("queue", "retry", "pacs", "--config", str(config), "--study", "1.2.3")
    finally:
        daemon.close()
    assert daemon.words == ["queue", "retry", "pacs", "--study", "1.2.3"]  # --config stays here
    assert res.returncode == code, res.stderr
    body = reply.decode().split("\n", 1)[1]
    assert (res.stdout, res.stderr) == ((body, "") if code == 0 else ("", body))
