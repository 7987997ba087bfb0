"""A real DICOMweb server for the cloud-destination tests: Orthanc 1.10 with Debian's DICOMweb
plugin (orthanc-dicomweb 1.7), plus `StowProxy`, a small loopback HTTP reverse proxy in front
of it whose behaviour a test switches (answer 503, 429 + Retry-After, be slow, fail one
instance of a STOW request with 202) and which records every request it sees.

Use it from a test module (or through conftest):

    from dicomweb_peer import dicomweb_peer, stow_proxy   # noqa: F401  (fixture factories)

    def test_stow(dicomweb_peer, stow_proxy, start_conduit):
        pacs = dicomweb_peer()                  # Orthanc + DICOMweb, started
        proxy = stow_proxy(pacs)                # started, passing everything through
        url = proxy.dicomweb_url                # or pacs.dicomweb_url to skip the proxy
        ...
        proxy.answer(503)                       # every request: 503 until told otherwise
        proxy.answer(429, retry_after=2, times=3, only_stow=True)
        proxy.delay(3.0, times=2)               # the next 2 requests wait 3 s, then go on
        proxy.fail_instance(sop_uid)            # next STOW carrying it: 202, that one failed
        proxy.pass_through()
        assert pacs.sop_instance_uids() == {...}
        proxy.stow_requests()                   # [ProxyRequest(sop_uids=(...), status=...)]

`DicomWebOrthanc` is an `orthanc_peer.OrthancPeer` (same REST helpers: sop_instance_uids(),
instance_file(uid), instance_count(), clear(), stop()/start() on the same ports) with the
plugin loaded; `dicomweb_url` is its DICOMweb root (POST <root>/studies), and
`qido_sop_instance_uids()` lists what QIDO-RS (<root>/instances) reports.

What Orthanc 1.10.1 + DICOMweb 1.7 do with STOW-RS (checked on this machine):
- POST <root>/studies with multipart/related; type="application/dicom": each part is stored
  through Orthanc's REST /instances, *byte for byte as posted* (unlike C-STORE, which DCMTK
  re-serialises): /instances/{id}/file returns the very Part 10 file that was sent. Parts with
  Content-Disposition (curl -F) are accepted too.
- Every instance stored (duplicates included: a second copy is "AlreadyStored", not an error):
  HTTP 200, Content-Type application/dicom+json, a body with (0008,1199) ReferencedSOPSequence
  (0008,1150/1155/1190 per instance), an empty (0008,1198) FailedSOPSequence and (0008,1190)
  RetrieveURL of the study.
- Some or all failed (a part that is not DICOM, truncated, or an instance without Series
  Instance UID): HTTP **400** - never 202, even when others of the same request were stored -
  with FailureReason (0008,1197) 0xC000 (49152) per failed instance, the stored ones still in
  ReferencedSOPSequence; and that answer has *no Content-Type header*.
- POST <root>/studies/<uid> with instances of another study: HTTP 409, FailureReason 0x0110
  (272) for each, again without Content-Type.
- A body that is not multipart/related: 415. An empty multipart: 200.
- QIDO-RS GET <root>/studies?limit=1: 200 application/dicom+json (what a circuit probe sees).
- Orthanc cannot answer 503 or 429 or be slow on purpose: that is StowProxy's job.

Every process is ended by its own pid at teardown; every wait is bounded.
"""

from __future__ import annotations

import http.client
import http.server
import json
import re
import socket
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from orthanc_peer import HOST, OrthancError, OrthancPeer

DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
FAILURE_OUT_OF_RESOURCES = 0xA700  # PS3.18 10.5.3 / PS3.4 Annex B: "Refused: out of resources"


class DicomWebOrthanc(OrthancPeer):
    """Orthanc with the DICOMweb plugin on its HTTP port (root /dicom-web/)."""

    def __init__(self, workdir: Path, aet: str = "ORTHANC", **kwargs):
        extra = dict(kwargs.pop("extra_config", None) or {})
        extra.setdefault("Plugins", [DICOMWEB_PLUGIN])
        extra.setdefault("DicomWeb", {"Enable": True, "Root": "/dicom-web/", "EnableWado": True,
                                      "Ssl": False, "StudiesMetadata": "MainDicomTags",
                                      "SeriesMetadata": "MainDicomTags"})
        # STOW requests come on several connections at once.
        extra.setdefault("HttpThreadsCount", 50)
        super().__init__(workdir, aet, extra_config=extra, **kwargs)

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def start(self, timeout: float = 20.0) -> "DicomWebOrthanc":
        super().start(timeout)
        plugins = self.get_json("/plugins")
        if "dicom-web" not in plugins:
            self.kill()
            raise OrthancError(f"the DICOMweb plugin did not load ({plugins}):\n{self.log()}")
        return self

    def qido_sop_instance_uids(self) -> set[str]:
        """SOP Instance UIDs as QIDO-RS lists them (GET <root>/instances)."""
        found = json.loads(self._request("GET", "/dicom-web/instances?includefield=00080018"))
        return {item["00080018"]["Value"][0] for item in found}

    def study_sop_instance_uids(self, study_instance_uid: str) -> set[str]:
        """SOP Instance UIDs of one study as QIDO-RS lists them (empty: no such study)."""
        try:
            body = self._request(
                "GET", f"/dicom-web/studies/{study_instance_uid}/instances"
                       "?includefield=00080018")
        except OrthancError as exc:
            if "HTTP 404" in str(exc):
                return set()
            raise
        return {item["00080018"]["Value"][0] for item in json.loads(body or b"[]")}

    def simplified_tags(self, sop_instance_uid: str) -> dict:
        oid = self.orthanc_id(sop_instance_uid)
        if oid is None:
            raise OrthancError(f"no instance with SOP Instance UID {sop_instance_uid}")
        return self.get_json(f"/instances/{oid}/simplified-tags")


# ------------------------------------------------------------------------------------------
# multipart/related and Part 10 bits the proxy needs


def part10_meta_uids(data: bytes) -> tuple[str, str]:
    """(SOP Instance UID, SOP Class UID) from a Part 10 file's meta group ("" when absent)."""
    uid, cls = "", ""
    if len(data) < 132 or data[128:132] != b"DICM":
        return uid, cls
    pos = 132
    while pos + 8 <= len(data):
        group, elem = struct.unpack_from("<HH", data, pos)
        if group != 0x0002:
            break
        vr = data[pos + 4: pos + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV"):
            (length,) = struct.unpack_from("<I", data, pos + 8)
            start = pos + 12
        else:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            start = pos + 8
        value = data[start: start + length].rstrip(b"\0 ").decode("ascii", "replace")
        if elem == 0x0003:
            uid = value
        elif elem == 0x0002:
            cls = value
        pos = start + length
    return uid, cls


def multipart_boundary(content_type: str) -> str | None:
    m = re.search(r'boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))', content_type or "", re.I)
    return (m.group(1) or m.group(2)) if m else None


@dataclass
class Part:
    raw: bytes       # the part as it was in the body: its headers, CRLF CRLF, its content
    content: bytes   # the content alone (a Part 10 file for STOW)


def split_multipart(body: bytes, boundary: str) -> list[Part]:
    """The parts of a multipart body (RFC 2046 5.1.1: delimiter = CRLF "--" boundary)."""
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # the close delimiter; the epilogue follows
        # After the boundary: optional whitespace, CRLF, then the part's headers.
        nl = chunk.find(b"\r\n")
        if nl < 0:
            continue
        raw = chunk[nl + 2:]
        head_end = raw.find(b"\r\n\r\n")
        content = raw[head_end + 4:] if head_end >= 0 else raw
        parts.append(Part(raw=raw, content=content))
    return parts


def join_multipart(parts: list[Part], boundary: str) -> bytes:
    b = boundary.encode("latin-1")
    out = b"".join(b"--" + b + b"\r\n" + p.raw + b"\r\n" for p in parts)
    return out + b"--" + b + b"--\r\n"


def _failed_sop_item(sop_uid: str, sop_class: str, reason: int) -> dict:
    return {"00081150": {"vr": "UI", "Value": [sop_class or "1.2.840.10008.5.1.4.1.1.7"]},
            "00081155": {"vr": "UI", "Value": [sop_uid]},
            "00081197": {"vr": "US", "Value": [reason]}}


# ------------------------------------------------------------------------------------------
# the proxy


@dataclass
class ProxyRequest:
    """One request the proxy received and how it was answered."""
    method: str
    path: str
    received_at: float                  # time.monotonic() when the body was read
    answered_at: float = 0.0
    body_bytes: int = 0
    sop_uids: tuple[str, ...] = ()      # STOW: the instances in the request, in order
    action: str = "forward"             # forward | answer | delay | fail | upstream-down
    status: int = 0                     # what the client got
    failed_uids: tuple[str, ...] = ()   # STOW: instances reported failed by the proxy
    headers: dict[str, str] = field(default_factory=dict)  # request headers, names lower-case

    @property
    def is_stow(self) -> bool:
        return self.method == "POST" and bool(re.search(r"/studies(/[^/?]+)?/?(\?|$)", self.path))


_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailer", "trailers", "transfer-encoding", "upgrade", "expect", "content-length",
               "host"}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and 100-continue answered for libcurl
    server: "_Server"

    def setup(self):
        super().setup()
        self.server.proxy._track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.proxy._track(self.connection, False)

    def log_message(self, fmt, *args):  # noqa: D401 - quiet; the proxy records requests
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = bytearray()
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self):
        body = self._read_body()
        self.server.proxy._serve(self, body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, proxy: "StowProxy"):
        self.proxy = proxy
        super().__init__(address, _Handler)


class StowProxy:
    """A loopback HTTP reverse proxy in front of `upstream` (http://host:port). Modes:
    pass-through (default); answer(status, retry_after=, times=, only_stow=); delay(seconds,
    times=, only_stow=); fail_instance(sop_uid, reason=0xA700, times=1). `times` counts the
    requests a mode applies to, after which it falls back to pass-through (None: until changed).
    stop() closes the listener and every open connection (a server that went away); start()
    listens again on the same port."""

    def __init__(self, upstream: str, port: int | None = None, dicomweb_root: str = "/dicom-web"):
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host = parsed.hostname or HOST
        self.upstream_port = parsed.port or 80
        self.root = dicomweb_root.rstrip("/")
        self.port = port or _free_port()
        self._lock = threading.Lock()
        self._mode = ("forward", {})
        self._mode_times: int | None = None
        self._mode_only_stow = False
        self._fail: dict[str, tuple[int, int]] = {}  # sop uid -> (reason, times left)
        self._requests: list[ProxyRequest] = []
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def dicomweb_url(self) -> str:
        return self.url + self.root

    def alive(self) -> bool:
        return self._server is not None

    def start(self) -> "StowProxy":
        assert self._server is None, "proxy already running"
        deadline = time.monotonic() + 10
        while True:
            try:
                self._server = _Server((HOST, self.port), self)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name=f"stow-proxy-{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    # ---- behaviour switches

    def pass_through(self) -> None:
        with self._lock:
            self._mode, self._mode_times, self._mode_only_stow = ("forward", {}), None, False
            self._fail.clear()

    def answer(self, status: int, *, retry_after: int | None = None, times: int | None = None,
               only_stow: bool = False, body: bytes | None = None) -> None:
        """Answer requests with `status` (and a Retry-After header) instead of forwarding."""
        with self._lock:
            self._mode = ("answer", {"status": status, "retry_after": retry_after, "body": body})
            self._mode_times, self._mode_only_stow = times, only_stow

    def delay(self, seconds: float, *, times: int | None = None, only_stow: bool = False) -> None:
        """Wait `seconds` before forwarding (a slow server; the request still goes through,
        even when the client has given up meanwhile)."""
        with self._lock:
            self._mode = ("delay", {"seconds": seconds})
            self._mode_times, self._mode_only_stow = times, only_stow

    def fail_instance(self, sop_instance_uid: str, *, reason: int = FAILURE_OUT_OF_RESOURCES,
                      times: int = 1) -> None:
        """The next `times` STOW requests carrying this instance: its part is removed before the
        request goes to Orthanc (so it is *not* stored), and the answer lists it in
        FailedSOPSequence with FailureReason `reason`: HTTP 202 when other instances of the
        request were stored, 409 when it was the only one."""
        with self._lock:
            self._fail[sop_instance_uid] = (reason, times)

    # ---- what was seen

    def requests(self) -> list[ProxyRequest]:
        with self._lock:
            return list(self._requests)

    def stow_requests(self) -> list[ProxyRequest]:
        return [r for r in self.requests() if r.is_stow]

    def sop_counts(self) -> dict[str, int]:
        """SOP Instance UID -> number of STOW requests that carried it."""
        counts: dict[str, int] = {}
        for r in self.stow_requests():
            for uid in r.sop_uids:
                counts[uid] = counts.get(uid, 0) + 1
        return counts

    def instances_per_request(self) -> list[int]:
        return [len(r.sop_uids) for r in self.stow_requests()]

    def statuses(self, stow_only: bool = True) -> list[int]:
        return [r.status for r in (self.stow_requests() if stow_only else self.requests())]

    def clear_log(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for(self, predicate, timeout: float = 20.0, what: str = "proxy condition",
                 interval: float = 0.05):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}; requests: "
                            + "; ".join(f"{r.method} {r.path[:60]} -> {r.status} "
                                        f"({len(r.sop_uids)} inst, {r.action})"
                                        for r in self.requests()[-20:]))
            time.sleep(interval)

    # ---- serving

    def _choose(self, is_stow: bool) -> tuple[str, dict]:
        with self._lock:
            kind, args = self._mode
            if kind == "forward" or (self._mode_only_stow and not is_stow):
                return "forward", {}
            if self._mode_times is not None:
                self._mode_times -= 1
                if self._mode_times <= 0:
                    self._mode, self._mode_times = ("forward", {}), None
                    self._mode_only_stow = False
            return kind, dict(args)

    def _take_failures(self, uids: tuple[str, ...]) -> dict[str, int]:
        out = {}
        with self._lock:
            for uid in uids:
                if uid in self._fail:
                    reason, left = self._fail[uid]
                    out[uid] = reason
                    if left <= 1:
                        del self._fail[uid]
                    else:
                        self._fail[uid] = (reason, left - 1)
        return out

    def _serve(self, handler: _Handler, body: bytes) -> None:
        rec = ProxyRequest(method=handler.command, path=handler.path,
                           received_at=time.monotonic(), body_bytes=len(body),
                           headers={k.lower(): v for k, v in handler.headers.items()})
        parts: list[Part] = []
        boundary = None
        if rec.is_stow:
            boundary = multipart_boundary(handler.headers.get("Content-Type", ""))
            if boundary:
                parts = split_multipart(body, boundary)
                rec.sop_uids = tuple(part10_meta_uids(p.content)[0] for p in parts)
        with self._lock:
            self._requests.append(rec)

        kind, args = self._choose(rec.is_stow)
        rec.action = kind
        if kind == "answer":
            headers = {"Content-Type": "application/json"}
            if args.get("retry_after") is not None:
                headers["Retry-After"] = str(args["retry_after"])
            payload = args.get("body")
            if payload is None:
                payload = json.dumps({"HttpStatus": args["status"],
                                      "Message": "answered by the test proxy"}).encode()
            self._reply(handler, rec, args["status"], headers, payload)
            return
        if kind == "delay":
            time.sleep(args["seconds"])

        failures = self._take_failures(rec.sop_uids) if rec.is_stow and boundary else {}
        if failures:
            rec.action = "fail"
            rec.failed_uids = tuple(failures)
            kept = [p for p, uid in zip(parts, rec.sop_uids) if uid not in failures]
            classes = {uid: part10_meta_uids(p.content)[1] for p, uid in zip(parts, rec.sop_uids)}
            failed_items = [_failed_sop_item(uid, classes.get(uid, ""), reason)
                            for uid, reason in failures.items()]
            if not kept:
                answer = {"00081198": {"vr": "SQ", "Value": failed_items}}
                self._reply(handler, rec, 409, {"Content-Type": "application/dicom+json"},
                            json.dumps(answer).encode())
                return
            body = join_multipart(kept, boundary)
            got = self._forward(handler, body)
            if got is None:
                self._reply(handler, rec, 502, {"Content-Type": "text/plain"}, b"upstream down")
                return
            status, headers, rsp_body = got
            try:
                answer = json.loads(rsp_body or b"{}")
            except ValueError:
                answer = {}
            seq = answer.setdefault("00081198", {"vr": "SQ"})
            seq.setdefault("Value", []).extend(failed_items)
            self._reply(handler, rec, 202 if status == 200 else status,
                        {"Content-Type": "application/dicom+json"}, json.dumps(answer).encode())
            return

        got = self._forward(handler, body)
        if got is None:
            rec.action = "upstream-down"
            self._reply(handler, rec, 502, {"Content-Type": "text/plain"}, b"upstream down")
            return
        status, headers, rsp_body = got
        self._reply(handler, rec, status, headers, rsp_body)

    def _forward(self, handler: _Handler, body: bytes):
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        try:
            conn.request(handler.command, handler.path,
                         body=body if handler.command not in ("GET", "HEAD") or body else None,
                         headers=headers)
            rsp = conn.getresponse()
            data = rsp.read()
            out_headers = {k: v for k, v in rsp.getheaders() if k.lower() not in _HOP_BY_HOP}
            return rsp.status, out_headers, data
        except OSError:
            return None
        finally:
            conn.close()

    def _reply(self, handler: _Handler, rec: ProxyRequest, status: int, headers: dict,
               body: bytes) -> None:
        rec.status = status
        rec.answered_at = time.monotonic()
        try:
            handler.send_response(status)
            for k, v in headers.items():
                handler.send_header(k, v)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(body)
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True  # the client gave up (e.g. its request timeout)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture
def dicomweb_peer(tmp_path):
    """Factory: dicomweb_peer(aet="DICOMWEB", start=True, **OrthancPeer kwargs) ->
    DicomWebOrthanc. Every Orthanc started through it is stopped at teardown."""
    peers: list[DicomWebOrthanc] = []

    def make(aet: str = "DICOMWEB", start: bool = True, **kwargs) -> DicomWebOrthanc:
        peer = DicomWebOrthanc(tmp_path / f"dicomweb{len(peers)}-{aet}", aet, **kwargs)
        peers.append(peer)
        if start:
            try:
                peer.start()
            except OrthancError as exc:
                pytest.fail(str(exc))
        return peer

    yield make
    _stop_all(peers)


@pytest.fixture(scope="module")
def shared_dicomweb(tmp_path_factory):
    """One Orthanc + DICOMweb for a whole test module (each start/stop costs ~4 s). Tests
    should use their own UIDs or call clear()."""
    peer = DicomWebOrthanc(tmp_path_factory.mktemp("dicomweb-shared"), "DICOMWEB")
    try:
        peer.start()
    except OrthancError as exc:
        pytest.fail(str(exc))
    yield peer
    peer.stop()


@pytest.fixture
def stow_proxy():
    """Factory: stow_proxy(upstream, start=True, port=None) -> StowProxy, where `upstream` is
    a DicomWebOrthanc (or an http://host:port URL). Stopped at teardown."""
    proxies: list[StowProxy] = []

    def make(upstream, start: bool = True, port: int | None = None) -> StowProxy:
        url = upstream.url if hasattr(upstream, "url") else str(upstream)
        proxy = StowProxy(url, port=port)
        proxies.append(proxy)
        return proxy.start() if start else proxy

    yield make
    for proxy in proxies:
        proxy.stop()


def _stop_all(peers) -> None:
    import signal
    for peer in peers:
        if peer.alive():
            peer.proc.send_signal(signal.SIGTERM)
    for peer in peers:
        peer.stop()
