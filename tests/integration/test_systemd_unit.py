"""systemd/conduit.service: `systemd-analyze verify` is clean, the `systemd-analyze security`
exposure stays at what the README records, the sysusers file makes the user the unit runs as,
and the real binary runs under systemd itself with every hardening option of the unit.

There is no systemd as PID 1 in CI (nor `systemd-run --user`: no user bus). So the last test
starts systemd 252 as a private *user* manager, as root, in its own mount namespace (a tmpfs
over /run/systemd makes it believe the system was booted with systemd) and in its own cgroup
(a manager left in the root cgroup would move every process of the machine into init.scope),
loads the shipped unit into it and starts it. A root user manager applies the sandbox as the
system manager would (User=, capabilities, ProtectSystem=, seccomp, namespaces, ...). What
differs in user mode is where StateDirectory= and RuntimeDirectory= live ($XDG_CONFIG_HOME and
$XDG_RUNTIME_DIR), so the copy of the unit maps those paths, the binary, the config file and
the user (nobody: the tests create no system user); every other line is the shipped one. The
files live below /run, not in tmp_path: the unit's PrivateTmp= hides /tmp from the service.
Where that is not possible (not root, no unshare, no cgroup to move into) the test is skipped.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import (CONDUIT_BIN, HOST, free_port, make_instance, make_uid, metric_value,
                      parse_metrics, run_echoscu, run_storescu, wait_until)

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "conduit.service"
SYSUSERS = REPO / "systemd" / "conduit.sysusers"
PACKAGED_CONFIG = REPO / "packaging" / "conduit.yaml"
PACKAGED_RULES = REPO / "packaging" / "rules.yaml"

# `systemd-analyze security` of the unit, as recorded in the README. A change that loosens the
# sandbox fails here; one that tightens it should lower these.
EXPOSURE = 1.4
# What stays open, and why (README, "The service"): the router talks DICOM and HTTP to anywhere
# (network, address families, no IP allow list), serves `conduit queue` on a local socket and
# talks to systemd (AF_UNIX), binds port 104 (the capability, ambient, and so no user
# namespace), ProtectClock= adds a read-only rtc device rule, and it runs in the host's root.
OPEN_ITEMS = {
    "RootDirectory=/RootImage=",
    "AmbientCapabilities=",
    "RestrictAddressFamilies=~AF_UNIX",
    "RestrictAddressFamilies=~AF_(INET|INET6)",
    "CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)",
    "PrivateNetwork=",
    "PrivateUsers=",
    "DeviceAllow=",
    "IPAddressDeny=",
}

# Capability bits (linux/capability.h).
CAP_NET_BIND_SERVICE = 1 << 10


def run(cmd, timeout=60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **kw)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        pytest.skip(f"{tool} is not installed")
    return path


def replace_once_or_more(text: str, old: str, new: str) -> str:
    """str.replace that fails when `old` is not there: the unit or config changed under the test."""
    assert old in text, f"expected {old!r} in the file; update the test's mapping"
    return text.replace(old, new)


def unit_with_binary(dest: Path, binary: str) -> Path:
    """The shipped unit with /usr/bin/conduit replaced by `binary` (verify wants it to exist)."""
    dest.write_text(replace_once_or_more(UNIT.read_text(), "/usr/bin/conduit", binary))
    return dest


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


# ------------------------------------------------------------------------------------------
# the unit file, offline


def test_unit_passes_systemd_analyze_verify(tmp_path):
    need("systemd-analyze")
    unit = unit_with_binary(tmp_path / "conduit.service", CONDUIT_BIN)
    res = run(["systemd-analyze", "verify", "--man=no", unit])
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "" and res.stderr.strip() == "", res.stdout + res.stderr


def test_security_exposure_is_what_the_readme_records(tmp_path):
    need("systemd-analyze")
    unit = unit_with_binary(tmp_path / "conduit.service", CONDUIT_BIN)
    res = run(["systemd-analyze", "security", "--offline=yes", "--no-pager", unit])
    assert res.returncode == 0, res.stderr
    m = re.search(r"Overall exposure level for conduit\.service: (\d+\.\d+)", res.stdout)
    assert m, res.stdout
    open_items = {line.split()[1] for line in res.stdout.splitlines() if line.startswith("✗")}
    assert open_items == OPEN_ITEMS, (
        f"newly open: {sorted(open_items - OPEN_ITEMS)}; now closed (update the README and "
        f"OPEN_ITEMS): {sorted(OPEN_ITEMS - open_items)}\n{res.stdout}")
    assert float(m.group(1)) == EXPOSURE, res.stdout


def test_unit_runs_the_daemon_as_the_appliance_expects():
    s = unit_settings()
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["ExecStart"] == ["/usr/bin/conduit serve --config /etc/conduit/conduit.yaml"]
    # Reload checks both files first, then signals only the main process.
    assert s["ExecReload"][-1] == "/bin/kill -HUP $MAINPID"
    assert any(cmd.startswith("/usr/bin/conduit rules check") for cmd in s["ExecReload"])
    assert int(s["WatchdogSec"][0]) > 0
    assert s["User"] == ["conduit"] and s["Group"] == ["conduit"]
    assert s["StateDirectory"] == ["conduit"] and s["RuntimeDirectory"] == ["conduit"]
    assert s["ConfigurationDirectory"] == ["conduit"]
    assert s["WorkingDirectory"] == ["/var/lib/conduit"]
    assert s["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    assert s["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
    assert s["ProtectSystem"] == ["strict"] and s["MemoryDenyWriteExecute"] == ["yes"]
    # A configuration mistake (exit 2) is not retried in a loop.
    assert "2" in s["RestartPreventExitStatus"][0].split()


def test_packaged_config_uses_the_directories_the_unit_provides():
    """The spool in StateDirectory (the only writable place), the admin socket in
    RuntimeDirectory, the rules in ConfigurationDirectory, a privileged port only with
    CAP_NET_BIND_SERVICE."""
    s = unit_settings()
    config = PACKAGED_CONFIG.read_text()

    def value(section: str, key: str) -> str:
        m = re.search(rf"^{section}:\n(?:[ #].*\n|\n)*?  {key}: (\S+)", config, re.M)
        assert m, f"{section}.{key} not in {PACKAGED_CONFIG}"
        return m.group(1)

    assert value("spool", "directory").startswith(f"/var/lib/{s['StateDirectory'][0]}/")
    assert value("admin", "socket").startswith(f"/run/{s['RuntimeDirectory'][0]}/")
    assert value("rules", "file").startswith(f"/etc/{s['ConfigurationDirectory'][0]}/")
    if int(value("listener", "port")) < 1024:
        assert "CAP_NET_BIND_SERVICE" in s["AmbientCapabilities"][0]
    assert "/etc/conduit/conduit.yaml" in s["ExecStart"][0]


def test_sysusers_creates_the_user_the_unit_runs_as(tmp_path):
    need("systemd-sysusers")
    (tmp_path / "etc").mkdir()
    res = subprocess.run(["systemd-sysusers", f"--root={tmp_path}", "-"],
                         input=SYSUSERS.read_text(), capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    users = {line.split(":")[0]: line.split(":") for line in
             (tmp_path / "etc" / "passwd").read_text().splitlines()}
    groups = {line.split(":")[0]: line.split(":") for line in
              (tmp_path / "etc" / "group").read_text().splitlines()}
    assert "conduit" in users and "conduit" in groups
    _, _, uid, gid, _, home, shell = users["conduit"]
    assert int(uid) < 1000, "a system user"
    assert gid == groups["conduit"][2]
    assert home == "/var/lib/conduit" and shell.endswith("nologin")


# ------------------------------------------------------------------------------------------
# the unit under systemd


def cgroup_hierarchies() -> list[Path]:
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.procs").exists():  # pure cgroup v2
        return [root]
    return sorted(p for p in root.iterdir() if (p / "cgroup.procs").exists())


class PrivateUserManager:
    """systemd as a user manager of root, alone in a mount namespace and a cgroup of its own."""

    def __init__(self, base: Path):
        self.base = base
        self.runtime = base / "run"          # XDG_RUNTIME_DIR: RuntimeDirectory= lives here
        self.state_home = base / "var-lib"   # XDG_CONFIG_HOME: StateDirectory= in user mode
        self.units = self.runtime / "systemd" / "user"  # searched for units in user mode
        self.log = base / "manager.log"
        self.cgroups: list[Path] = []
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(XDG_RUNTIME_DIR=str(self.runtime), XDG_CONFIG_HOME=str(self.state_home))
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        return env

    def start(self) -> None:
        if os.geteuid() != 0:
            pytest.skip("starting a private systemd needs root")
        systemd = Path("/lib/systemd/systemd")
        if not systemd.exists() or not shutil.which("unshare") or not shutil.which("systemctl"):
            pytest.skip("systemd or unshare is not installed")
        if not Path("/run/systemd").is_dir():
            pytest.skip("no /run/systemd to mount over")
        for d in (self.runtime, self.state_home):
            d.mkdir(mode=0o755)
            d.chmod(0o755)  # the service's user must reach its directories below them
        # It starts this empty target instead of default.target: no sockets, timers, agents.
        self.units.mkdir(parents=True)
        (self.units / "conduit-unit-test.target").write_text(
            "[Unit]\nDescription=Nothing but the unit under test\nDefaultDependencies=no\n")
        # A cgroup of its own in every hierarchy; in the one systemd manages it is required.
        required = [h for h in cgroup_hierarchies()
                    if h.name in ("unified", "systemd") or h == Path("/sys/fs/cgroup")]
        if not required:
            pytest.skip("no cgroup hierarchy for systemd")
        for hierarchy in cgroup_hierarchies():
            try:
                (hierarchy / self.base.name).mkdir()
                self.cgroups.append(hierarchy / self.base.name)
            except OSError:
                if hierarchy in required:
                    pytest.skip(f"cannot create a cgroup in {hierarchy}")
        cgroups, must = list(self.cgroups), [h / self.base.name for h in required]

        def enter_cgroups():  # in the child, before exec: never start systemd in the root cgroup
            for cgroup in cgroups:
                try:
                    (cgroup / "cgroup.procs").write_text(str(os.getpid()))
                except OSError:
                    if cgroup in must:
                        raise

        # Inside the namespace: /run is a mount point, as on a booted system (else the
        # service's namespace gets an empty /run of its own with its /proc); /run/systemd/system
        # says "booted with systemd"; the inaccessible nodes are what ProtectHome=,
        # ProtectKernelTunables=, ... mount over hidden paths (PID 1 would have created them).
        script = f"""set -e
mountpoint -q /run || mount --bind /run /run
mount -t tmpfs -o mode=0755 tmpfs /run/systemd
mkdir -p /run/systemd/system /run/systemd/inaccessible
cd /run/systemd/inaccessible
mkdir dir; touch reg; mkfifo fifo; mknod chr c 0 0; mknod blk b 0 0
python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("sock")'
chmod 0000 dir reg fifo chr blk sock
cd /
exec {systemd} --user --unit=conduit-unit-test.target
"""
        with open(self.log, "wb") as log:
            try:
                self.proc = subprocess.Popen(
                    ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                    env=self.env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    preexec_fn=enter_cgroups)
            except (OSError, subprocess.SubprocessError) as error:
                pytest.skip(f"cannot start systemd in a cgroup of its own: {error}")
        private = self.runtime / "systemd" / "private"
        deadline = time.monotonic() + 15
        while not private.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log_text = self.log.read_text(errors="replace")
                self.stop()
                pytest.skip(f"systemd --user did not come up here:\n{log_text[-2000:]}")
            time.sleep(0.05)
        # The system manager's notify socket takes messages from every user; this one was
        # made with the manager's umask, and the service runs as another user.
        (self.runtime / "systemd" / "notify").chmod(0o777)
        # (`is-system-running` says "offline" here: it looks for /run/systemd/system itself.)
        wait_until(lambda: self.systemctl("show", "--property=Version").returncode == 0, 15,
                   interval=0.1, what="the private systemd to answer")

    def systemctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["systemctl", "--user", "--no-pager", *args], env=self.env(),
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        res = self.systemctl("show", unit, *[f"--property={p}" for p in props])
        return dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # stops its units, then exits
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        # Whatever is left in our cgroups was started by this test; then remove them.
        for cgroup in self.cgroups:
            for dirpath, _, _ in os.walk(cgroup, topdown=False):
                procs = Path(dirpath) / "cgroup.procs"
                try:
                    for pid in procs.read_text().split():
                        os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        time.sleep(0.1)
        for cgroup in self.cgroups:
            for dirpath, _, _ in os.walk(cgroup, topdown=False):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass


def free_privileged_port() -> int:
    for port in (104, *range(1000, 1024)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((HOST, port))
                return port
            except OSError:
                continue
    pytest.skip("no free privileged port on 127.0.0.1")


def proc_status(pid: int) -> dict[str, str]:
    return dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())


@pytest.fixture
def systemd_service(tmp_path):
    """The shipped unit (paths mapped, see the module doc) started in a private systemd."""
    if not os.access("/run", os.W_OK):
        pytest.skip("/run is not writable")
    base = Path(tempfile.mkdtemp(prefix="conduit-unit-test.", dir="/run"))
    base.chmod(0o755)
    manager = PrivateUserManager(base)
    try:
        manager.start()
        yield make_service(manager, tmp_path)
    finally:
        manager.stop()
        shutil.rmtree(base, ignore_errors=True)


class Service:
    def __init__(self, manager, binary, config, rules, spool, log, port, metrics_port):
        self.manager, self.binary, self.config, self.rules = manager, binary, config, rules
        self.spool, self.log, self.port, self.metrics_port = spool, log, port, metrics_port

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"

    def diagnostics(self) -> str:
        status = self.manager.systemctl("status", "conduit.service").stdout
        return f"{status}\n--- conduit log ---\n{self.log_text()[-4000:]}"

    def rules_generation(self) -> float:
        url = f"http://{HOST}:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as rsp:
            return metric_value(parse_metrics(rsp.read().decode()), "conduit_rules_generation")

    def main_pid(self) -> int:
        return int(self.manager.show("conduit.service", "MainPID")["MainPID"])


def make_service(manager: PrivateUserManager, tmp_path: Path) -> Service:
    base = manager.base
    binary = Path(CONDUIT_BIN).resolve()
    # The sandbox hides /home, /root, /tmp and /var/tmp: run a copy if the binary is there.
    if str(binary).startswith(("/home/", "/root/", "/tmp/", "/var/tmp/", "/run/user/")):
        shutil.copy2(binary, base / "conduit")
        binary = base / "conduit"
    etc = base / "etc"
    etc.mkdir(mode=0o755)
    config, rules = etc / "conduit.yaml", etc / "rules.yaml"
    state = manager.state_home / "conduit"  # StateDirectory=conduit in user mode
    port, metrics_port = free_privileged_port(), free_port()

    text = PACKAGED_CONFIG.read_text()
    for old, new in (("directory: /var/lib/conduit/spool", f"directory: {state}/spool"),
                     ("socket: /run/conduit/admin.sock",
                      f"socket: {manager.runtime}/conduit/admin.sock"),
                     ("file: /etc/conduit/rules.yaml", f"file: {rules}"),
                     ("bind_address: 0.0.0.0", f"bind_address: {HOST}"),
                     ("port: 104\n", f"port: {port}\n"),
                     ("listen: 127.0.0.1:9112", f"listen: {HOST}:{metrics_port}"),
                     # /run is a small tmpfs
                     ("min_free_bytes: 1GiB", "min_free_bytes: 1MiB"),
                     # only SIGHUP reloads, so the test knows which reload it sees
                     ("reload_check_seconds: 2", "reload_check_seconds: 0")):
        text = replace_once_or_more(text, old, new)
    config.write_text(text)
    shutil.copy(PACKAGED_RULES, rules)
    for f in (config, rules):
        f.chmod(0o644)

    nobody = pwd.getpwnam("nobody")
    unit = UNIT.read_text()
    for old, new in (("/usr/bin/conduit", str(binary)),
                     ("/etc/conduit/conduit.yaml", str(config)),
                     ("WorkingDirectory=/var/lib/conduit", f"WorkingDirectory={state}"),
                     ("\nUser=conduit\n", "\nUser=nobody\n"),
                     ("\nGroup=conduit\n", f"\nGroup={grp.getgrgid(nobody.pw_gid).gr_name}\n"),
                     # in user mode it would be the StateDirectory's own path
                     ("ConfigurationDirectory=conduit\n", "ConfigurationDirectory=conduit-etc\n")):
        unit = replace_once_or_more(unit, old, new)
    units = manager.units
    (units / "conduit.service.d").mkdir()
    (units / "conduit.service").write_text(unit)
    # No journald here: the log goes to a file.
    log = base / "conduit.log"
    (units / "conduit.service.d" / "log.conf").write_text(
        f"[Service]\nStandardOutput=append:{log}\nStandardError=inherit\n")
    res = manager.systemctl("daemon-reload")
    assert res.returncode == 0, res.stderr
    return Service(manager, binary, config, rules, state / "spool", log, port, metrics_port)


def test_service_runs_confined_under_systemd(systemd_service, tmp_path):
    svc = systemd_service
    manager = svc.manager

    # Type=notify: the unit is active once the daemon said READY=1 (spool recovered, listening).
    res = manager.systemctl("start", "--no-block", "conduit.service")
    assert res.returncode == 0, res.stderr
    state = wait_until(
        lambda: {"active", "failed"} & {manager.show("conduit.service", "ActiveState")
                                        .get("ActiveState")}, 30, interval=0.1,
        what="conduit.service to become active (READY=1) or fail")
    assert state == {"active"}, svc.diagnostics()
    props = manager.show("conduit.service", "ActiveState", "SubState", "Type", "NotifyAccess",
                         "WatchdogUSec", "MainPID")
    assert props["ActiveState"] == "active" and props["SubState"] == "running", svc.diagnostics()
    assert props["Type"] == "notify" and props["NotifyAccess"] == "main"
    pid = int(props["MainPID"])
    assert "listening on" in svc.log_text()

    # Confined: user nobody, only CAP_NET_BIND_SERVICE (also as the bounding set), no new
    # privileges, a seccomp filter, and a read-only root.
    status = proc_status(pid)
    assert status["Uid"].split() == [str(pwd.getpwnam("nobody").pw_uid)] * 4
    for field in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        assert int(status[field], 16) == CAP_NET_BIND_SERVICE, (field, status[field])
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Seccomp"].strip() == "2"
    mounts = {line.split()[4]: line.split()[5] for line in
              Path(f"/proc/{pid}/mountinfo").read_text().splitlines()}
    assert "ro" in mounts["/"].split(","), "ProtectSystem=strict: / is read-only"
    assert "/home" in mounts and "/tmp" in mounts, "ProtectHome=, PrivateTmp="
    # WatchdogSec= reaches the daemon, which pings at half of it while its loops progress.
    watchdog_usec = int(unit_settings()["WatchdogSec"][0]) * 1_000_000
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert f"WATCHDOG_USEC={watchdog_usec}".encode() in environ

    # It works in there: DICOM on a privileged port, a store into the spool (the only
    # writable place), metrics, and `conduit queue` over the admin socket in /run/conduit.
    echo = run_echoscu(svc.port)
    assert echo.returncode == 0, f"{echo.stdout}{echo.stderr}\n{svc.diagnostics()}"
    instance = make_instance(tmp_path / "ct.dcm", sop_instance_uid=make_uid(1), pixel_bytes=8192)
    store = run_storescu(svc.port, [instance])
    assert store.returncode == 0, f"{store.stdout}{store.stderr}\n{svc.diagnostics()}"
    wait_until(lambda: list((svc.spool / "instances").glob("*.dcm")), 10,
               what="the instance in the spool")
    with urllib.request.urlopen(f"http://{HOST}:{svc.metrics_port}/metrics", timeout=5) as rsp:
        assert rsp.status == 200
    queue = subprocess.run([str(svc.binary), "queue", "--config", str(svc.config), "list"],
                           capture_output=True, text=True, timeout=30)
    assert queue.returncode == 0, queue.stderr

    # Reload: a broken rules file fails `systemctl reload` before the daemon is signalled...
    assert svc.rules_generation() == 1
    svc.rules.write_text("version: 1\nrules:\n  - name: x\n    route: [nowhere]\n")
    res = manager.systemctl("reload", "conduit.service")
    assert res.returncode != 0, "ExecReload checks the rules before signalling"
    assert manager.show("conduit.service", "ActiveState")["ActiveState"] == "active"
    assert "SIGHUP" not in svc.log_text()
    assert svc.rules_generation() == 1
    # ... a good one is loaded by SIGHUP in the same process.
    svc.rules.write_text("version: 1\nrules:\n  - name: drop-sr\n"
                         "    when: { attribute: Modality, equals: SR }\n    discard: true\n")
    res = manager.systemctl("reload", "conduit.service")
    assert res.returncode == 0, f"{res.stderr}\n{svc.diagnostics()}"
    wait_until(lambda: svc.rules_generation() == 2, 10, what="rules generation 2 after SIGHUP")
    assert svc.main_pid() == pid
    assert manager.show("conduit.service", "ActiveState")["ActiveState"] == "active"

    # Stop: SIGTERM, drain, exit 0.
    res = manager.systemctl("stop", "conduit.service", timeout=60)
    assert res.returncode == 0, res.stderr
    props = manager.show("conduit.service", "Result", "ExecMainCode", "ExecMainStatus")
    assert props["Result"] == "success", f"{props}\n{svc.diagnostics()}"
    assert props["ExecMainStatus"] == "0", f"{props}\n{svc.diagnostics()}"
    assert "conduit stopped" in svc.log_text()
