"""The Debian package: cpack on the tree under test (no rebuild) into a temporary directory, its
metadata and files, and dpkg installing it into a scratch root (`dpkg --root` with the
maintainer scripts run chrootless, DPKG_ROOT set): the files where the unit expects them, the
user created, the unit enabled, the host untouched; an upgrade keeps an edited configuration;
remove and purge.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from conftest import CONDUIT_BIN

REPO = Path(__file__).resolve().parents[2]

# What the package holds, and nothing else (no tests, benchmarks or libraries).
FILES = {
    "usr/bin/conduit": None,  # the built binary, stripped
    "lib/systemd/system/conduit.service": REPO / "systemd" / "conduit.service",
    "usr/lib/sysusers.d/conduit.conf": REPO / "systemd" / "conduit.sysusers",
    "etc/conduit/conduit.yaml": REPO / "packaging" / "conduit.yaml",
    "etc/conduit/rules.yaml": REPO / "packaging" / "rules.yaml",
    "usr/share/doc/conduit/README.md": REPO / "README.md",
}
CONFFILES = ["/etc/conduit/conduit.yaml", "/etc/conduit/rules.yaml"]


def run(cmd, timeout=120, check=True, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL, **kw)
    if check:
        assert res.returncode == 0, f"{' '.join(map(str, cmd))}: {res.stdout}{res.stderr}"
    return res


def build_dir() -> Path:
    for candidate in (os.environ.get("CONDUIT_BUILD_DIR"), Path(CONDUIT_BIN).resolve().parents[1],
                      REPO / "build"):
        if candidate and (Path(candidate) / "CPackConfig.cmake").exists():
            return Path(candidate)
    pytest.skip("no configured build tree with CPackConfig.cmake (run scripts/build)")


def project_version() -> str:
    m = re.search(r"project\(conduit VERSION (\S+)", (REPO / "CMakeLists.txt").read_text())
    assert m
    return m.group(1)


@pytest.fixture(scope="module")
def deb(tmp_path_factory) -> Path:
    for tool in ("cpack", "dpkg-deb", "dpkg-shlibdeps"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (cmake, dpkg, dpkg-dev)")
    out = tmp_path_factory.mktemp("deb")
    run(["cpack", "-G", "DEB", "--config", build_dir() / "CPackConfig.cmake", "-B", out],
        timeout=300)
    debs = list(out.glob("conduit_*.deb"))
    assert len(debs) == 1, list(out.iterdir())
    return debs[0]


def field(deb: Path, name: str) -> str:
    return run(["dpkg-deb", "--field", deb, name]).stdout.strip()


def control_members(deb: Path, dest: Path) -> dict[str, tarfile.TarInfo]:
    tar_path = dest / "control.tar"
    with open(tar_path, "wb") as f:
        subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], stdout=f, check=True, timeout=60)
    with tarfile.open(tar_path) as tar:
        tar.extractall(dest / "control")
        return {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}


# ------------------------------------------------------------------------------------------
# the .deb itself


def test_deb_metadata(deb, tmp_path):
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    assert deb.name == f"conduit_{project_version()}-1_{arch}.deb"
    assert field(deb, "Package") == "conduit"
    assert field(deb, "Version") == f"{project_version()}-1"
    assert field(deb, "Architecture") == arch
    assert field(deb, "Maintainer")
    # dpkg-shlibdeps found the libraries the binary links.
    depends = field(deb, "Depends")
    for lib in ("libc6", "libstdc++6", "libdcmtk17", "libsystemd0", "libyaml-cpp0.7",
                "libcurl4", "libssl3"):
        assert re.search(rf"(^|, ){re.escape(lib)}\b", depends), depends

    members = control_members(deb, tmp_path)
    assert (tmp_path / "control" / "conffiles").read_text().split() == CONFFILES
    for script in ("postinst", "prerm", "postrm"):
        assert script in members, sorted(members)
        assert members[script].mode & 0o777 == 0o755, script
        source = REPO / "packaging" / "debian" / script
        assert (tmp_path / "control" / script).read_text() == source.read_text()


def test_deb_holds_exactly_the_appliance_files(deb, tmp_path):
    listing = run(["dpkg-deb", "--contents", deb]).stdout.splitlines()
    files = {line.split()[-1].removeprefix("./") for line in listing if line.startswith("-")}
    assert files == set(FILES), f"unexpected: {files - set(FILES)}; missing: {set(FILES) - files}"
    for line in listing:
        assert line.split()[1] == "root/root", line
    run(["dpkg-deb", "--extract", deb, tmp_path])
    for path, source in FILES.items():
        if source is not None:
            assert (tmp_path / path).read_bytes() == source.read_bytes(), path
    binary = tmp_path / "usr" / "bin" / "conduit"
    assert binary.stat().st_mode & 0o755 == 0o755
    sections = run(["readelf", "-S", "-W", binary]).stdout if shutil.which("readelf") else ""
    assert ".debug_info" not in sections, "the packaged binary is stripped"


def test_packaged_config_and_rules_are_valid(deb, tmp_path):
    """With the packaged binary: the config and rules as installed, and the examples they carry
    in comments, uncommented."""
    run(["dpkg-deb", "--extract", deb, tmp_path])
    binary = tmp_path / "usr" / "bin" / "conduit"
    config, rules = tmp_path / "etc/conduit/conduit.yaml", tmp_path / "etc/conduit/rules.yaml"
    assert "OK" in run([binary, "config", "check", config]).stdout
    run([binary, "rules", "check", "--config", config, rules])

    def uncomment_block(text: str, start: str) -> str:
        """The comment block from the line starting with `start` to the next YAML line."""
        out, inside, found = [], False, False
        for line in text.splitlines():
            if line.startswith(start):
                inside = found = True
            elif inside and not line.startswith("#"):
                inside = False
            out.append(line[2:] if inside else line)
        assert found, start
        return "\n".join(out) + "\n"

    example_config = tmp_path / "example.yaml"
    example_config.write_text(uncomment_block(config.read_text(), "# destinations:")
                              .replace("destinations: []\n", ""))
    example_rules = tmp_path / "example-rules.yaml"
    example_rules.write_text(uncomment_block(rules.read_text(), "# default:")
                             .replace("rules: []\n", ""))
    assert "OK" in run([binary, "config", "check", example_config]).stdout
    res = run([binary, "rules", "check", "--config", example_config, example_rules])
    assert "2 rules" in res.stdout


# ------------------------------------------------------------------------------------------
# installed into a scratch root


class ScratchRoot:
    def __init__(self, path: Path):
        self.path = path
        for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log", "etc"):
            (path / d).mkdir(parents=True, exist_ok=True)
        (path / "var/lib/dpkg/status").touch()

    def dpkg(self, *args, check=True) -> subprocess.CompletedProcess:
        # chrootless: the maintainer scripts run here with DPKG_ROOT set; depends: the scratch
        # root has no libc to satisfy them.
        return run(["dpkg", f"--root={self.path}", "--force-script-chrootless",
                    "--force-not-root", "--force-depends", "--force-unsafe-io", *args],
                   check=check)

    def __truediv__(self, rel: str) -> Path:
        return self.path / rel.lstrip("/")

    def status(self) -> str:
        return run(["dpkg-query", f"--root={self.path}", "-W", "-f=${Status} ${Version}",
                    "conduit"], check=False).stdout


@pytest.fixture
def root(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("dpkg --root installs files owned by root: needs root")
    return ScratchRoot(tmp_path / "root")


def host_state() -> tuple:
    """What installing into another root must not touch on this machine."""
    def read(p):
        return Path(p).read_text() if Path(p).exists() else None
    return (read("/etc/passwd"), read("/etc/group"),
            Path("/etc/systemd/system/multi-user.target.wants/conduit.service").is_symlink(),
            Path("/var/lib/systemd/deb-systemd-helper-enabled/conduit.service.dsh-also").exists())


def test_install_puts_files_where_the_unit_expects_them(deb, root, tmp_path):
    before = host_state()
    res = root.dpkg("--install", deb)
    assert "enabled, not started" in res.stdout
    assert root.status().startswith("install ok installed")
    assert host_state() == before, "dpkg --root changed the host"

    unit_text = (root / "lib/systemd/system/conduit.service").read_text()
    exec_start = re.search(r"^ExecStart=(\S+) serve --config (\S+)$", unit_text, re.M)
    assert exec_start, unit_text
    binary, config = root / exec_start.group(1), root / exec_start.group(2)
    assert binary.is_file() and os.access(binary, os.X_OK)
    assert config.is_file()
    for cmd in re.findall(r"^ExecReload=(\S+)", unit_text, re.M):
        assert (root / cmd).exists() or Path(cmd).exists(), cmd  # /bin/kill comes with the OS
    assert (root / "etc/conduit/rules.yaml").is_file()
    # The unit as installed verifies, its ExecStart pointing into the scratch root.
    if shutil.which("systemd-analyze"):
        mapped = tmp_path / "conduit.service"
        mapped.write_text(unit_text.replace(exec_start.group(1), str(binary)))
        res = run(["systemd-analyze", "verify", "--man=no", mapped], check=False)
        assert res.returncode == 0 and not res.stderr.strip(), res.stderr

    # postinst: the user and group the unit runs as, and the unit enabled.
    passwd = {line.split(":")[0]: line.split(":") for line in
              (root / "etc/passwd").read_text().splitlines()}
    assert "conduit" in passwd, (root / "etc/passwd").read_text()
    assert passwd["conduit"][5] == "/var/lib/conduit"
    assert passwd["conduit"][6].endswith("nologin")
    assert any(line.startswith("conduit:") for line in
               (root / "etc/group").read_text().splitlines())
    wants = root / "etc/systemd/system/multi-user.target.wants/conduit.service"
    assert wants.is_symlink() and os.readlink(wants) == "/lib/systemd/system/conduit.service"
    # The spool (StateDirectory=) and the socket directory (RuntimeDirectory=) are systemd's.
    assert not (root / "var/lib/conduit").exists()


def repack(deb: Path, dest: Path, version: str, config_line: str, rules_line: str) -> Path:
    """The same package as a new version whose shipped configuration files changed."""
    tree = dest / "tree"
    run(["dpkg-deb", "--raw-extract", deb, tree])
    control = tree / "DEBIAN" / "control"
    control.write_text(re.sub(r"^Version: .*$", f"Version: {version}", control.read_text(),
                              flags=re.M))
    with open(tree / "etc/conduit/conduit.yaml", "a") as f:
        f.write(config_line)
    with open(tree / "etc/conduit/rules.yaml", "a") as f:
        f.write(rules_line)
    sums = []
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree).as_posix()
        if path.is_file() and not rel.startswith("DEBIAN/"):
            sums.append(run(["md5sum", path]).stdout.split()[0] + "  " + rel)
    (tree / "DEBIAN" / "md5sums").write_text("\n".join(sums) + "\n")
    out = dest / f"conduit_{version}.deb"
    run(["dpkg-deb", "--root-owner-group", "-Znone", "--build", tree, out])
    return out


def test_upgrade_keeps_an_edited_configuration(deb, root, tmp_path):
    root.dpkg("--install", deb)
    config = root / "etc/conduit/conduit.yaml"
    edited = config.read_text().replace("ae_title: CONDUIT", "ae_title: SITE_ROUTER")
    assert edited != config.read_text()
    config.write_text(edited)

    # The same version again (a reinstall): nothing to ask, the edit stays.
    root.dpkg("--install", deb)
    assert config.read_text() == edited

    # A new version that ships changed files: the edited one is kept (the new one is put
    # beside it as .dpkg-dist), the untouched one is updated.
    version = field(deb, "Version").replace("-1", "-2")
    newer = repack(deb, tmp_path, version, "# shipped by the next version\n",
                   "# shipped by the next version\n")
    res = root.dpkg("--force-confold", "--install", newer)
    assert root.status() == f"install ok installed {version}"
    assert config.read_text() == edited, res.stdout
    assert (root / "etc/conduit/conduit.yaml.dpkg-dist").read_text().endswith(
        "# shipped by the next version\n")
    assert (root / "etc/conduit/rules.yaml").read_text().endswith("# shipped by the next version\n")
    # Still enabled, still one user.
    assert (root / "etc/systemd/system/multi-user.target.wants/conduit.service").is_symlink()
    assert sum(line.startswith("conduit:") for line in
               (root / "etc/passwd").read_text().splitlines()) == 1


def test_remove_keeps_configuration_and_purge_keeps_the_spool(deb, root):
    root.dpkg("--install", deb)
    spool = root / "var/lib/conduit/spool"
    spool.mkdir(parents=True)
    (spool / "undelivered.dcm").write_bytes(b"DICM")

    root.dpkg("--remove", "conduit")
    assert not (root / "usr/bin/conduit").exists()
    assert not (root / "lib/systemd/system/conduit.service").exists()
    assert (root / "etc/conduit/conduit.yaml").exists(), "remove keeps conffiles"

    res = root.dpkg("--purge", "conduit")
    assert not (root / "etc/conduit").exists()
    assert not (root / "etc/systemd/system/multi-user.target.wants/conduit.service").exists()
    assert not (root / "etc/systemd/system/conduit.service").exists(), "the mask is gone"
    assert (spool / "undelivered.dcm").exists(), "purge never deletes images"
    assert "kept /var/lib/conduit" in res.stdout
    assert root.status() == "" or "not-installed" in root.status()
