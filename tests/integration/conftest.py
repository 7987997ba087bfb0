"""Fixtures for the integration tests: the real conduit binary, real DCMTK peers, loopback only.

- `start_conduit(**config)`: starts `conduit serve --config FILE` with a test config (deep-merged
  with the overrides), waits until it answers an association, and at teardown sends SIGTERM and
  asserts a clean exit (status 0, no signal, i.e. no crash).
- `storescp_ref`: a DCMTK storescp in bit-preserving mode (+B), the reference receiver.
- `run_storescu` / `run_echoscu`: DCMTK senders with TCP_NODELAY=1 and a bounded run time.
- Helpers to read spooled Part 10 files byte by byte and to build test instances with pydicom.

Every wait is bounded; every process started here is killed by its own pid at teardown.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

import dicom_ul as ul

from orthanc_peer import orthanc_peer  # noqa: F401  (fixture: a real Orthanc PACS)
from dicomweb_peer import dicomweb_peer, shared_dicomweb, stow_proxy  # noqa: F401  (fixtures)
from s3_peer import s3_peer  # noqa: F401  (fixture: s3rver)

CONDUIT_BIN = os.environ.get("CONDUIT_BIN", "/work/main/build/bin/conduit")
HOST = "127.0.0.1"
CALLED_AE = "CONDUIT"

START_TIMEOUT = 20.0  # seconds until the router must answer an association
STOP_TIMEOUT = 20.0   # seconds from SIGTERM to exit


# ------------------------------------------------------------------------------------------
# small utilities


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def dcmtk_env() -> dict[str, str]:
    env = dict(os.environ)
    # DCMTK leaves Nagle on: without this every C-STORE stalls ~45 ms (DESIGN.md).
    env["TCP_NODELAY"] = "1"
    return env


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Polls `predicate` until it returns a truthy value; fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def kill_process(proc: subprocess.Popen) -> None:
    """SIGKILL one process we started (by its pid) and reap it."""
    if proc.poll() is None:
        proc.kill()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


# ------------------------------------------------------------------------------------------
# Part 10 files, read byte by byte

# PS3.5 7.1.2: explicit VR elements whose length field is 32-bit.
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}


@dataclass
class Part10:
    meta: dict[int, tuple[str, bytes]]  # element number of group 0002 -> (VR, raw value)
    dataset: bytes                      # everything after the meta group, untouched

    def meta_str(self, elem: int) -> str:
        if elem not in self.meta:
            raise AssertionError(f"meta header has no (0002,{elem:04X})")
        return self.meta[elem][1].rstrip(b"\0 ").decode("ascii", "replace").strip()

    def private_information_lines(self) -> list[str]:
        """(0002,0102) as text: UTF-8 lines, the NUL padding removed."""
        if 0x0102 not in self.meta:
            raise AssertionError("meta header has no (0002,0102) PrivateInformation")
        text = self.meta[0x0102][1].rstrip(b"\0").decode("utf-8")
        return [line for line in text.splitlines() if line.strip()]

    def private_information(self) -> dict[str, str]:
        """The `key=value` lines of (0002,0102) (test_corpus checks there are no others)."""
        out = {}
        for line in self.private_information_lines():
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip()] = value.strip()
        return out


def read_part10(path: Path) -> Part10:
    data = Path(path).read_bytes()
    assert len(data) >= 132 and data[128:132] == b"DICM", f"{path}: no Part 10 preamble/DICM"
    pos, meta = 132, {}
    # The meta group is always Explicit VR Little Endian (PS3.10 7.1).
    while pos + 8 <= len(data):
        group, elem = struct.unpack_from("<HH", data, pos)
        if group != 0x0002:
            break
        vr = data[pos + 4: pos + 6]
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<I", data, pos + 8)
            start = pos + 12
        else:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            start = pos + 8
        assert start + length <= len(data), f"{path}: meta element (0002,{elem:04x}) overruns file"
        meta[elem] = (vr.decode("ascii"), data[start: start + length])
        pos = start + length
    if 0x0000 in meta:
        (group_length,) = struct.unpack("<I", meta[0x0000][1])
        assert pos == 132 + 12 + group_length, f"{path}: (0002,0000) disagrees with the meta group"
    return Part10(meta=meta, dataset=data[pos:])


# ------------------------------------------------------------------------------------------
# the router under test


def _allow_core_dumps() -> None:
    # A crash leaves a core in the router's working directory (tmp_path) for a backtrace.
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    except (ValueError, OSError):
        pass


BASE_CONFIG = {
    "network_threads": 2,
    "log_level": "info",
    "listener": {
        "bind_address": HOST,
        "ae_title": CALLED_AE,
        "require_called_ae": True,
        "artim_timeout_seconds": 10,
        "idle_timeout_seconds": 60,
    },
    "spool": {
        "max_bytes": "8GiB",
        # Test machines have far less free disk than the 1GiB default might assume elsewhere;
        # keep the floor low so only the budget tests hit it.
        "min_free_bytes": "16MiB",
    },
    "metrics": {"enabled": True},
}


class Conduit:
    """One `conduit serve` process on its own ports and spool directory."""

    def __init__(self, workdir: Path, overrides: dict | None = None, spool: Path | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.metrics_port = free_port()
        while self.metrics_port == self.port:
            self.metrics_port = free_port()
        self.spool = Path(spool) if spool else self.workdir / "spool"
        config = deep_merge(BASE_CONFIG, {
            "listener": {"port": self.port},
            "spool": {"directory": str(self.spool)},
            "metrics": {"listen": f"{HOST}:{self.metrics_port}"},
        })
        self.config = deep_merge(config, overrides or {})
        self.config_path = self.workdir / "conduit.yaml"
        self.write_config()
        self.log_path = self.workdir / "conduit.log"
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.expect_killed = False
        self.stopped = False

    def write_config(self) -> None:
        # JSON is YAML (1.2 flow style), and needs no PyYAML.
        self.config_path.write_text(json.dumps(self.config, indent=2) + "\n")

    @property
    def ae_title(self) -> str:
        return self.config["listener"]["ae_title"]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return ""

    def start(self, wait: bool = True) -> "Conduit":
        assert os.access(CONDUIT_BIN, os.X_OK), f"conduit binary not found at {CONDUIT_BIN}"
        self.runs += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.runs} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [CONDUIT_BIN, "serve", "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.workdir, preexec_fn=_allow_core_dumps)
        self.expect_killed = False
        self.stopped = False
        if wait:
            self.wait_ready()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _answers_association(self) -> bool:
        """True once the listener answers an A-ASSOCIATE-RQ with AC or RJ."""
        if not self.alive():
            self.stopped = True  # reported here; teardown need not report it again
            pytest.fail(f"conduit exited with {self.proc.returncode} during startup:\n{self.log()}")
        try:
            with ul.Connection(HOST, self.port, timeout=2.0) as conn:
                conn.send(ul.associate_rq(calling_ae="READYCHECK", called_ae=self.ae_title))
                got = conn.read_pdu(timeout=2.0)
                if got.type == ul.A_ASSOCIATE_AC:
                    conn.send(ul.release_rq())
                    try:
                        conn.read_pdu(timeout=2.0)
                    except (ul.PeerClosed, TimeoutError):
                        pass
                return got.type in (ul.A_ASSOCIATE_AC, ul.A_ASSOCIATE_RJ)
        except (OSError, ul.PeerClosed, TimeoutError):
            return False

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        wait_until(self._answers_association, timeout, interval=0.1, what="conduit to answer")

    def stop(self) -> int:
        """SIGTERM, bounded wait, and the exit status (SIGKILL + failure if it hangs)."""
        if self.proc is None:
            return 0
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                kill_process(self.proc)
                pytest.fail(f"conduit did not exit within {STOP_TIMEOUT}s of SIGTERM:\n{self.log()}")
        return self.proc.returncode

    def kill9(self) -> None:
        self.expect_killed = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def teardown(self) -> None:
        """Stops the process; fails unless it exits with 0 (a crash shows as a signal)."""
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            if self.expect_killed or self.stopped:
                return  # the test ended it on purpose (and checked how)
            pytest.fail(f"conduit died during the test with status {self.proc.returncode}:\n"
                        f"{self.log()}{self.backtrace()}")
        code = self.stop()
        assert code == 0, f"conduit exited with {code} after SIGTERM:\n{self.log()}{self.backtrace()}"

    def backtrace(self) -> str:
        """Thread backtraces from a core file the process left in its working directory."""
        cores = sorted(self.workdir.glob("core*"), key=lambda p: p.stat().st_mtime)
        if not cores or not shutil.which("gdb"):
            return ""
        try:
            res = subprocess.run(["gdb", "-batch", "-nx", "-ex", "thread apply all bt 25",
                                  CONDUIT_BIN, str(cores[-1])],
                                 capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            return f"\n(core file {cores[-1]}: gdb timed out)"
        return f"\n--- gdb backtrace of {cores[-1]} ---\n{res.stdout[-8000:]}"

    # ---- spool views

    def instances(self) -> list[Path]:
        return sorted((self.spool / "instances").glob("*.dcm"))

    def parts(self) -> list[Path]:
        return sorted((self.spool / "incoming").glob("*.part"))

    # ---- process views (Linux /proc)

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/PID/status")

    # ---- network helpers

    def associate(self, **kwargs) -> ul.Association:
        kwargs.setdefault("called_ae", self.ae_title)
        return ul.Association.open(HOST, self.port, **kwargs)

    def metrics_text(self) -> str:
        url = f"http://{HOST}:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as rsp:
            assert rsp.status == 200
            return rsp.read().decode("utf-8")


@contextlib.contextmanager
def running_conduit(workdir: Path, overrides: dict | None = None):
    """A started Conduit for wider-scoped fixtures; checked for a clean exit at the end."""
    c = Conduit(workdir, overrides)
    try:
        c.start()
        yield c
    finally:
        c.teardown()


@pytest.fixture
def start_conduit(tmp_path):
    """Factory: start_conduit(**config_overrides) -> a ready Conduit, stopped at teardown."""
    started: list[Conduit] = []

    def start(overrides: dict | None = None, wait: bool = True, name: str = "conduit", **kw) -> Conduit:
        merged = deep_merge(overrides or {}, kw)
        c = Conduit(tmp_path / f"{name}{len(started)}", merged)
        started.append(c)
        return c.start(wait=wait)

    yield start
    errors = []
    for c in started:
        try:
            c.teardown()
        except BaseException as exc:  # noqa: BLE001 - report every process, then fail
            errors.append(str(exc))
    if errors:
        pytest.fail("\n\n".join(errors))


@pytest.fixture
def conduit(start_conduit) -> Conduit:
    """A router with the base test config."""
    return start_conduit()


# ------------------------------------------------------------------------------------------
# DCMTK peers


def run_storescu(port: int, files, *args: str, aet: str = "STORESCU", aec: str = CALLED_AE,
                 timeout: float = 120.0) -> subprocess.CompletedProcess:
    cmd = ["storescu", "-aet", aet, "-aec", aec, *args, HOST, str(port), *[str(f) for f in files]]
    return subprocess.run(cmd, env=dcmtk_env(), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def run_echoscu(port: int, *args: str, aet: str = "ECHOSCU", aec: str = CALLED_AE,
                timeout: float = 30.0) -> subprocess.CompletedProcess:
    cmd = ["echoscu", "-aet", aet, "-aec", aec, "-to", "5", "-ta", "10", *args, HOST, str(port)]
    return subprocess.run(cmd, env=dcmtk_env(), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


class StoreScp:
    """DCMTK storescp in bit-preserving mode: writes each dataset exactly as it came off the
    wire, so it tells what storescu (or the router) really sent. `extra_args` adds options
    (e.g. `-xf cfg profile` to accept only some SOP classes); stop() and start() again keep the
    port, for a destination that goes down and comes back."""

    def __init__(self, workdir: Path, *, name: str = "storescp", port: int | None = None,
                 extra_args: tuple[str, ...] = (), fork: bool = False, start: bool = True):
        self.dir = Path(workdir) / name
        self.dir.mkdir(parents=True)
        self.port = port or free_port()
        self.log_path = Path(workdir) / f"{name}.log"
        self.extra_args = tuple(extra_args)
        self.fork = fork
        self.proc: subprocess.Popen | None = None
        if start:
            self.start()

    def start(self, extra_args: tuple[str, ...] | None = None) -> "StoreScp":
        if extra_args is not None:
            self.extra_args = tuple(extra_args)
        # -pm: accept any SOP class; +xa: accept every transfer syntax DCMTK knows (both
        # replaced by an association profile, -xf, when one is given); +B: write data exactly as
        # read; +uf: unique file names (the corpus has several files sharing one SOP Instance
        # UID); -v: one log line per association and store.
        accept_all = [] if "-xf" in self.extra_args else ["-pm", "+xa"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["storescp", "-v", *accept_all, "+B", "+uf", *(["--fork"] if self.fork else []),
                 *self.extra_args, "-aet", "STORESCP", "-od", str(self.dir), str(self.port)],
                env=dcmtk_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        wait_until(self._answers, 15.0, interval=0.1, what="storescp to answer")
        return self

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"storescp exited: {self.log_path.read_text(errors='replace')}")
        try:
            a = ul.Association.open(HOST, self.port, timeout=2.0, called_ae="STORESCP")
        except (OSError, ul.PeerClosed, TimeoutError, ul.Rejected):
            return False
        a.release()
        return True

    def files(self) -> list[Path]:
        return sorted(p for p in self.dir.iterdir() if p.is_file())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Ends storescp and, with --fork, the children serving open associations (they hold
        the listening port, which a restart needs)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_process(self.proc)
        if self.fork:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # children that ignored SIGTERM
            except ProcessLookupError:
                pass


@pytest.fixture
def storescp_ref(tmp_path):
    scp = StoreScp(tmp_path)
    yield scp
    scp.stop()


# ------------------------------------------------------------------------------------------
# test data


def make_instance(path: Path, *, sop_instance_uid: str, pixel_bytes: int, seed: int = 0,
                  sop_class_uid: str = ul.SECONDARY_CAPTURE_STORAGE, patient: str = "TEST^PATIENT",
                  implicit: bool = False) -> Path:
    """A small valid image instance (Part 10 file) with `pixel_bytes` of 8-bit pixel data."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    columns = 256
    rows = max(1, pixel_bytes // columns)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(rows, columns), dtype=np.uint8)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    meta.ImplementationClassUID = ul.IMPLEMENTATION_CLASS_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.is_little_endian = True
    ds.is_implicit_VR = implicit
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    ds.StudyInstanceUID = sop_instance_uid.rsplit(".", 1)[0] + ".1"
    ds.SeriesInstanceUID = sop_instance_uid.rsplit(".", 1)[0] + ".2"
    ds.PatientName = patient
    ds.PatientID = "ID" + str(seed)
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.InstanceNumber = seed
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    ds.save_as(str(path), write_like_original=False)
    return Path(path)


_UID_ROOT = "1.2.826.0.1.3680043.9.7433.2"


def make_uid(*parts: int) -> str:
    """Deterministic per-process-unique UIDs under a test root (< 64 chars)."""
    return ".".join([_UID_ROOT, str(os.getpid() % 100000), str(int(time.time()) % 10**9),
                     *map(str, parts)])


def encode_dataset(ds, implicit: bool = True) -> bytes:
    """pydicom Dataset -> bytes in (Implicit|Explicit) VR Little Endian, no meta."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = implicit
    write_dataset(fp, ds)
    return fp.getvalue()


def small_dataset(sop_instance_uid: str, pixel_bytes: int = 4096,
                  sop_class_uid: str = ul.SECONDARY_CAPTURE_STORAGE):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    ds.PatientName = "RAW^CLIENT"
    ds.PatientID = "RAW1"
    ds.Modality = "OT"
    ds.Rows = max(1, pixel_bytes // 64)
    ds.Columns = 64
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    n = ds.Rows * 64
    ds.PixelData = (bytes(range(256)) * (n // 256 + 1))[:n]
    return ds


# ------------------------------------------------------------------------------------------
# Prometheus text format


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"not Prometheus text: {line!r}"
        labels = dict(_LABEL.findall(m.group(3) or ""))
        samples.append((m.group(1), labels, float(m.group(4))))
    return samples


def metric_value(samples, name: str, **labels) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 if none)."""
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == x for k, x in labels.items()))
