"""A real Orthanc PACS (Debian's `orthanc`, /usr/sbin/Orthanc) as a destination for the tests.

Use it from a test module:

    from orthanc_peer import orthanc_peer   # noqa: F401  (the fixture factory)

    def test_forward(orthanc_peer, start_conduit):
        pacs = orthanc_peer()                        # started, answering REST and DICOM
        pacs2 = orthanc_peer(aet="PACS2", check_called_aet=True)
        ...
        assert pacs.sop_instance_uids() == {...}

Each Orthanc gets its own tmp dir (config JSON, storage, SQLite index, log), DICOM and HTTP
ports picked free by the kernel, REST on 127.0.0.1 only, no authentication, no plugins (the
Debian config loads /usr/share/orthanc/plugins/; ours lists none and is the only config file
read), uncompressed storage (StorageCompression false). `stop()` then
`start()` restarts it on the same ports with the same storage ("destination down, then up").

What Orthanc 1.10.1 does (checked on this machine; pinned by test_orthanc_peer.py):
- Storage: the stored file keeps the received transfer syntax and every element, but not the
  bytes: Orthanc re-serialises with DCMTK (Data Set Trailing Padding (FFFC,FFFC) is dropped,
  deflated data is stored inflated). Compare element by element, not byte by byte.
- Duplicates: with "OverwriteInstances": false (Orthanc's default, also ours) a second C-STORE
  of a stored SOP Instance UID is answered 0x0000 and the new copy is dropped; with true
  (`overwrite_instances=True`) it replaces the stored one, also with 0x0000. Either way the REST
  API shows one instance, /statistics and /changes do not count the repeat, and the Prometheus
  metrics (/tools/metrics-prometheus) only have a store duration: Orthanc cannot tell how many
  times an instance arrived. This harness can: its Lua `ReceivedInstanceFilter` (always
  installed) logs one line per received instance, duplicates included, and
  `received_counts()` reads them back.
- SOP classes: "UnknownSopClassAccepted": false (default) accepts every storage SOP class DCMTK
  knows and refuses the presentation context of any other (result 3, abstract syntax not
  supported); true accepts any. 1.10 has no option to refuse a *known* SOP class
  ("AcceptedSopClasses"/"RejectedSopClasses" do not exist in 1.10). After negotiation:
  `refuse_sop_classes=[uid, ...]` makes the Lua filter raise an error, and Orthanc answers that
  C-STORE with 0xA700 (the status cannot be chosen: any store exception is 0xA700), storing
  nothing; `discard_sop_classes=[...]` makes it return false: answered 0x0000 and *not stored*
  (a PACS that silently drops). Instances without StudyInstanceUID or SeriesInstanceUID are
  also answered 0xA700. "AcceptedTransferSyntaxes" (`accepted_transfer_syntaxes=[...]`, UIDs
  with wildcards) limits the transfer syntaxes accepted at negotiation.
  (The Lua `ReceivedCStoreInstanceFilter`, new in 1.10.0, is unusable in 1.10.1: the status it
  returns is never put in the response, always 0x0000, and returning 0 discards the instance.)
- Called AE: "DicomCheckCalledAet": true (`check_called_aet=True`) rejects an association whose
  called AE is not `aet` with A-ASSOCIATE-RJ result 1 (permanent), source 1 (service user),
  reason 7 (called AE title not recognized); false (default) accepts any called AE.
- Speed: Orthanc's DICOM server is DCMTK, so it too needs TCP_NODELAY=1 in its environment (set
  here): without it each C-STORE-RSP waits for a delayed ACK, about 17 inst/s instead of ~90
  (512 KiB CT, storescu, one association, this 2-core box under load).
- Stop: SIGTERM takes about 3 s (its HTTP and DICOM servers poll); `stop(kill=True)` is instant.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable

import pytest

ORTHANC_BIN = os.environ.get("ORTHANC_BIN", "/usr/sbin/Orthanc")
HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0

# One log line per instance received ("Lua says: CONDUIT-RECEIVED <sop uid> <calling AET>").
# ReceivedInstanceFilter runs for every instance before Orthanc looks for duplicates, so repeats
# are logged too. Refusal: raising a Lua error makes Orthanc answer the C-STORE with 0xA700 and
# store nothing; returning false makes it answer 0x0000 and store nothing (a silent discard).
# (ReceivedCStoreInstanceFilter, new in 1.10.0, is not used: in 1.10.1 its returned status is
# never copied into the response - always 0x0000 - and 0 discards while non-zero stores.)
_LUA_TEMPLATE = """
conduit_refuse = {refuse}
conduit_discard = {discard}

function ReceivedInstanceFilter(dicom, origin, info)
  local sop = dicom['SOPInstanceUID'] or '?'
  local aet = '-'
  if type(origin) == 'table' and origin['RemoteAet'] and origin['RemoteAet'] ~= '' then
    aet = origin['RemoteAet']
  end
  print('CONDUIT-RECEIVED ' .. sop .. ' ' .. aet)
  local cls = dicom['SOPClassUID'] or ''
  if conduit_refuse[cls] then
    print('CONDUIT-REFUSED ' .. sop)
    error('refused by the test harness: SOP class ' .. cls)
  end
  if conduit_discard[cls] then
    print('CONDUIT-DISCARDED ' .. sop)
    return false
  end
  return true
end
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _lua_string(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _lua_set(uids: Iterable[str]) -> str:
    return "{" + ", ".join(f"[{_lua_string(u)}] = true" for u in uids) + "}"


class OrthancError(RuntimeError):
    pass


class OrthancPeer:
    """One Orthanc process with its own config, storage and index under `workdir`."""

    def __init__(self, workdir: Path, aet: str = "ORTHANC", *, check_called_aet: bool = False,
                 overwrite_instances: bool = False, unknown_sop_class_accepted: bool = False,
                 accepted_transfer_syntaxes: list[str] | None = None,
                 refuse_sop_classes: Iterable[str] = (), discard_sop_classes: Iterable[str] = (),
                 scp_timeout: int = 30,
                 extra_config: dict | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.aet = aet
        self.dicom_port = _free_port()
        self.http_port = _free_port()
        while self.http_port == self.dicom_port:
            self.http_port = _free_port()
        self.storage_dir = self.workdir / "storage"
        self.index_dir = self.workdir / "index"
        self.log_path = self.workdir / "orthanc.log"
        self.config_path = self.workdir / "orthanc.json"
        self.lua_path = self.workdir / "conduit_filter.lua"
        self.lua_path.write_text(_LUA_TEMPLATE.format(refuse=_lua_set(refuse_sop_classes),
                                                      discard=_lua_set(discard_sop_classes)))
        self.config = {
            "Name": f"conduit-test-{aet}",
            "StorageDirectory": str(self.storage_dir),
            "IndexDirectory": str(self.index_dir),
            "StorageCompression": False,
            "MaximumStorageSize": 0,
            "MaximumPatientCount": 0,
            "Plugins": [],
            "LuaScripts": [str(self.lua_path)],
            "ConcurrentJobs": 1,
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "SslEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": aet,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": check_called_aet,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowEcho": True,
            "DicomCheckModalityHost": False,
            "DicomModalities": {},
            "UnknownSopClassAccepted": unknown_sop_class_accepted,
            "DicomScpTimeout": scp_timeout,
            "OverwriteInstances": overwrite_instances,
            "SaveJobs": False,
            "StorageAccessOnFind": "Never",
            "MetricsEnabled": True,
            "DeidentifyLogs": False,
            "KeepAlive": True,
            "TcpNoDelay": True,
        }
        if accepted_transfer_syntaxes is not None:
            self.config["AcceptedTransferSyntaxes"] = list(accepted_transfer_syntaxes)
        self.config.update(extra_config or {})
        self.config_path.write_text(json.dumps(self.config, indent=2) + "\n")
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    # ---- lifecycle

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self, tail: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = START_TIMEOUT) -> "OrthancPeer":
        """Starts Orthanc (same ports, same storage on a restart); waits until GET /system
        answers and the DICOM port accepts TCP. Raises OrthancError on failure."""
        assert not self.alive(), "Orthanc already running"
        assert os.access(ORTHANC_BIN, os.X_OK), f"Orthanc not found at {ORTHANC_BIN}"
        self.runs += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.runs} =====\n".encode())
            log.flush()
            # The only config read is ours (a file, not a directory): no Debian defaults, so no
            # plugins. --no-jobs: nothing restarted from an earlier run.
            # TCP_NODELAY=1: Orthanc's DICOM server is DCMTK, which leaves Nagle on otherwise;
            # every C-STORE-RSP then waits for a delayed ACK (~17 instead of ~90 inst/s here).
            env = dict(os.environ, TCP_NODELAY="1")
            self.proc = subprocess.Popen(
                [ORTHANC_BIN, "--no-jobs", str(self.config_path)], env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise OrthancError(f"Orthanc exited with {self.proc.returncode} during startup:\n"
                                   f"{self.log()}")
            if self._answers():
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise OrthancError(f"Orthanc did not answer within {timeout}s:\n{self.log()}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/system", timeout=2) as rsp:
                if rsp.status != 200:
                    return False
        except (OSError, urllib.error.URLError):
            return False
        try:
            with socket.create_connection((HOST, self.dicom_port), timeout=2):
                return True
        except OSError:
            return False

    def stop(self, kill: bool = False) -> int | None:
        """SIGTERM and a bounded wait (SIGKILL if it hangs); returns the exit status. A clean
        stop takes about 3 s (Orthanc's HTTP and DICOM servers poll); `kill=True` sends SIGKILL
        at once (a crashed PACS; the SQLite index survives it)."""
        if self.proc is None:
            return None
        if kill:
            self.kill()
        elif self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def restart(self) -> "OrthancPeer":
        self.stop()
        return self.start()

    # ---- REST

    def _request(self, method: str, path: str, body: bytes | None = None,
                 timeout: float = 30.0) -> bytes:
        req = urllib.request.Request(self.url + path, data=body, method=method)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as rsp:
                return rsp.read()
        except urllib.error.HTTPError as exc:
            raise OrthancError(f"{method} {path}: HTTP {exc.code}: "
                               f"{exc.read()[:500].decode(errors='replace')}") from exc

    def get_json(self, path: str):
        return json.loads(self._request("GET", path))

    def post_json(self, path: str, payload):
        return json.loads(self._request("POST", path, json.dumps(payload).encode()))

    def delete(self, path: str) -> None:
        self._request("DELETE", path)

    def system(self) -> dict:
        return self.get_json("/system")

    def statistics(self) -> dict:
        """GET /statistics: CountPatients/Studies/Series/Instances, TotalDiskSize, ..."""
        return self.get_json("/statistics")

    def instance_count(self) -> int:
        return int(self.statistics()["CountInstances"])

    def study_count(self) -> int:
        return int(self.statistics()["CountStudies"])

    def instances(self) -> list[str]:
        """Orthanc ids of every stored instance."""
        return self.get_json("/instances")

    def instance_tags(self) -> list[dict]:
        """One dict per instance: Orthanc "ID", "MainDicomTags" (SOPInstanceUID, ...),
        "ParentSeries", ... (a single /tools/find with Expand, read from the index only)."""
        return self.post_json("/tools/find", {"Level": "Instance", "Query": {},
                                              "Expand": True})

    def sop_instance_uids(self) -> set[str]:
        return {i["MainDicomTags"]["SOPInstanceUID"] for i in self.instance_tags()}

    def orthanc_id(self, sop_instance_uid: str) -> str | None:
        """The Orthanc id of the stored instance with this SOP Instance UID, or None."""
        # The body is the bare UID (not a JSON string).
        hits = json.loads(self._request("POST", "/tools/lookup", sop_instance_uid.encode()))
        for hit in hits:
            if hit.get("Type") == "Instance":
                return hit["ID"]
        return None

    def instance_file(self, sop_instance_uid: str) -> bytes:
        """The stored Part 10 file (as received: StorageCompression is off)."""
        oid = self.orthanc_id(sop_instance_uid)
        if oid is None:
            raise OrthancError(f"no instance with SOP Instance UID {sop_instance_uid}")
        return self._request("GET", f"/instances/{oid}/file")

    def instance_metadata(self, sop_instance_uid: str) -> dict:
        """Orthanc's metadata: RemoteAET, CalledAET, TransferSyntax, SopClassUid, Origin,
        ReceptionDate, ..."""
        oid = self.orthanc_id(sop_instance_uid)
        if oid is None:
            raise OrthancError(f"no instance with SOP Instance UID {sop_instance_uid}")
        return self.get_json(f"/instances/{oid}/metadata?expand")

    def clear(self) -> None:
        """Deletes every stored patient (so the next test starts empty)."""
        for pid in self.get_json("/patients"):
            self.delete(f"/patients/{pid}")

    # ---- what arrived over DICOM, duplicates included (read from our Lua filter's log lines)

    def _log_lines(self, marker: str) -> list[list[str]]:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        out = []
        needle = f"Lua says: {marker} "
        for line in text.splitlines():
            pos = line.find(needle)
            if pos >= 0:
                out.append(line[pos + len(needle):].split())
        return out

    def received_counts(self) -> dict[str, int]:
        """SOP Instance UID -> how many times Orthanc received it (over all starts of this
        peer; duplicates, refused and discarded ones included; a REST upload counts too, with
        calling AET '-')."""
        return self._count("CONDUIT-RECEIVED")

    def received_calling_aets(self) -> dict[str, set[str]]:
        """SOP Instance UID -> calling AE titles it was received from."""
        out: dict[str, set[str]] = {}
        for fields in self._log_lines("CONDUIT-RECEIVED"):
            if len(fields) >= 2:
                out.setdefault(fields[0], set()).add(fields[1])
        return out

    def _count(self, marker: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for fields in self._log_lines(marker):
            if fields:
                counts[fields[0]] = counts.get(fields[0], 0) + 1
        return counts

    def refused(self) -> dict[str, int]:
        """SOP Instance UID -> times answered 0xA700 because of `refuse_sop_classes`."""
        return self._count("CONDUIT-REFUSED")

    def discarded(self) -> dict[str, int]:
        """SOP Instance UID -> times answered 0x0000 but dropped (`discard_sop_classes`)."""
        return self._count("CONDUIT-DISCARDED")

    def wait_for_instances(self, n: int, timeout: float = 30.0, interval: float = 0.1) -> int:
        """Polls /statistics until at least `n` instances are stored; returns the count."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.instance_count()
            if got >= n:
                return got
            if time.monotonic() > deadline:
                raise OrthancError(f"{got} of {n} instances after {timeout}s")
            time.sleep(interval)


@pytest.fixture
def orthanc_peer(tmp_path):
    """Factory: orthanc_peer(aet="ORTHANC", start=True, **OrthancPeer kwargs) -> OrthancPeer.
    Every Orthanc started through it is stopped at teardown."""
    peers: list[OrthancPeer] = []

    def make(aet: str = "ORTHANC", start: bool = True, **kwargs) -> OrthancPeer:
        peer = OrthancPeer(tmp_path / f"orthanc{len(peers)}-{aet}", aet, **kwargs)
        peers.append(peer)
        if start:
            try:
                peer.start()
            except OrthancError as exc:
                pytest.fail(str(exc))
        return peer

    yield make
    # SIGTERM to all first: each takes ~3 s to stop, so let them stop together.
    for peer in peers:
        if peer.alive():
            peer.proc.send_signal(signal.SIGTERM)
    for peer in peers:
        peer.stop()
