"""A real S3-compatible server for the cloud-destination tests: s3rver 3.7.1 (npm, installed by
scripts/install-deps into tools/s3rver/node_modules), on loopback, with its own data directory
and one or more buckets created at startup.

Use it from a test module (or through conftest):

    from s3_peer import s3_peer   # noqa: F401  (fixture factory)

    def test_s3(s3_peer, start_conduit):
        s3 = s3_peer()                           # started, bucket "images" exists
        dest = {"name": "bucket", "type": "s3", "endpoint": s3.endpoint, "region": "us-east-1",
                "bucket": s3.bucket, "path_style": True, "access_key_id": s3.access_key_id,
                "secret_access_key": s3.secret_access_key}
        ...
        assert s3.keys() == [...]; data = s3.get(key)

`stop()` then `start()` keeps the port and the data (a store that goes away and comes back).

What s3rver 3.7.1 does (read in its source, lib/middleware/authentication.js, and checked):
- Requests without any authentication are served (anonymous GET/PUT/list work): the helpers
  here read with plain HTTP GETs.
- With an Authorization header, only the access key id is checked: an unknown one is answered
  403 <Code>InvalidAccessKeyId</Code>. The only account is S3RVER / S3RVER. A Signature V4
  signature is *not verified* (any secret passes; V2 signatures are), and a V4 request must
  carry x-amz-content-sha256 (400 InvalidRequest "Missing required header for this request:
  x-amz-content-sha256" otherwise: curl 7.88's --aws-sigv4 does not add it by itself).
- Content-MD5 is not verified (a wrong one is stored without BadDigest); the ETag of a simple
  PUT is the MD5 of the body.
- Multipart uploads are supported (no minimum part size is enforced).
- An unknown bucket: 404 NoSuchBucket. Path-style (endpoint/bucket/key) always works;
  virtual-host style needs Host: <bucket>.localhost or <bucket>.<--service-endpoint>.
- Objects live on disk at <directory>/<bucket>/<key>._S3rver_object (metadata beside it).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
S3RVER_JS = Path(os.environ.get(
    "S3RVER_JS", REPO / "tools" / "s3rver" / "node_modules" / "s3rver" / "bin" / "s3rver.js"))
NODE = os.environ.get("NODE_BIN", "/usr/bin/node")
ACCESS_KEY_ID = "S3RVER"
SECRET_ACCESS_KEY = "S3RVER"
REGION = "us-east-1"
START_TIMEOUT = 20.0
_NS = "{http://doc.s3.amazonaws.com/2006-03-01/}"


class S3Error(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def quote_key(key: str) -> str:
    """A key as a URL path: each segment percent-encoded, '/' kept."""
    return "/".join(urllib.parse.quote(seg, safe="") for seg in key.split("/"))


class S3Peer:
    """One s3rver process with its own data directory under `workdir`."""

    access_key_id = ACCESS_KEY_ID
    secret_access_key = SECRET_ACCESS_KEY
    region = REGION

    def __init__(self, workdir: Path, buckets: tuple[str, ...] = ("images",),
                 port: int | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.buckets = tuple(buckets)
        self.port = port or _free_port()
        self.log_path = self.workdir / "s3rver.log"
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    @property
    def bucket(self) -> str:
        return self.buckets[0]

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def destination(self, name: str = "bucket", **extra) -> dict:
        """A conduit `type: s3` destination for this server's first bucket."""
        d = {"name": name, "type": "s3", "endpoint": self.endpoint, "region": self.region,
             "bucket": self.bucket, "path_style": True,
             "access_key_id": self.access_key_id, "secret_access_key": self.secret_access_key}
        d.update(extra)
        return d

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = START_TIMEOUT) -> "S3Peer":
        assert not self.alive(), "s3rver already running"
        if not S3RVER_JS.is_file():
            raise S3Error(f"s3rver not installed at {S3RVER_JS} (run scripts/install-deps)")
        self.runs += 1
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [NODE, str(S3RVER_JS), "-d", str(self.data_dir), "-a", HOST, "-p", str(self.port)]
        for b in self.buckets:
            args += ["--configure-bucket", b]
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.runs} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise S3Error(f"s3rver exited with {self.proc.returncode}:\n{self.log()}")
            if self._answers():
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise S3Error(f"s3rver did not answer within {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/{self.bucket}?max-keys=1",
                                        timeout=2) as rsp:
                return rsp.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
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

    # ---- reading (anonymous: s3rver serves unauthenticated requests)

    def _get(self, path: str, timeout: float = 30.0) -> tuple[bytes, dict[str, str]]:
        try:
            with urllib.request.urlopen(self.endpoint + path, timeout=timeout) as rsp:
                return rsp.read(), {k.lower(): v for k, v in rsp.headers.items()}
        except urllib.error.HTTPError as exc:
            raise S3Error(f"GET {path}: HTTP {exc.code}: "
                          f"{exc.read()[:400].decode(errors='replace')}") from exc

    def keys(self, prefix: str = "", bucket: str | None = None) -> list[str]:
        """Every key in the bucket (ListObjects, paged with marker), sorted."""
        bucket = bucket or self.bucket
        out: list[str] = []
        marker = ""
        while True:
            query = urllib.parse.urlencode({"prefix": prefix, "marker": marker,
                                            "max-keys": "1000"})
            data, _ = self._get(f"/{bucket}?{query}")
            root = ET.fromstring(data)
            page = [c.findtext(f"{_NS}Key") for c in root.findall(f"{_NS}Contents")]
            out += page
            if root.findtext(f"{_NS}IsTruncated") != "true" or not page:
                return sorted(out)
            marker = page[-1]

    def get(self, key: str, bucket: str | None = None) -> bytes:
        return self._get(f"/{bucket or self.bucket}/{quote_key(key)}")[0]

    def get_with_headers(self, key: str, bucket: str | None = None) -> tuple[bytes, dict]:
        return self._get(f"/{bucket or self.bucket}/{quote_key(key)}")

    def put(self, key: str, data: bytes, bucket: str | None = None,
            content_type: str = "application/dicom") -> None:
        """An anonymous PUT (to seed a bucket or check the server)."""
        req = urllib.request.Request(f"{self.endpoint}/{bucket or self.bucket}/{quote_key(key)}",
                                     data=data, method="PUT",
                                     headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=30) as rsp:
                rsp.read()
        except urllib.error.HTTPError as exc:
            raise S3Error(f"PUT {key}: HTTP {exc.code}: {exc.read()[:400]!r}") from exc

    def parts_stored(self) -> list[tuple[int, str]]:
        """(part number, upload id) of every multipart part s3rver logged storing (its log
        is on: s3rver is not started with -s)."""
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.log(tail=10_000_000))
        return [(int(n), u) for n, u in re.findall(r"Stored part (\d+) of (\S+)", text)]

    def object_path(self, key: str, bucket: str | None = None) -> Path:
        """Where s3rver keeps the object on disk."""
        return self.data_dir / (bucket or self.bucket) / (key + "._S3rver_object")

    def wait_for_keys(self, n: int, timeout: float = 30.0, prefix: str = "") -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.keys(prefix)
            if len(got) >= n:
                return got
            if time.monotonic() > deadline:
                raise S3Error(f"{len(got)} of {n} objects after {timeout}s: {got[:5]}")
            time.sleep(0.1)


@pytest.fixture
def s3_peer(tmp_path):
    """Factory: s3_peer(buckets=("images",), start=True, port=None) -> S3Peer. Every s3rver
    started through it is stopped at teardown."""
    peers: list[S3Peer] = []

    def make(buckets: tuple[str, ...] = ("images",), start: bool = True,
             port: int | None = None) -> S3Peer:
        peer = S3Peer(tmp_path / f"s3rver{len(peers)}", tuple(buckets), port=port)
        peers.append(peer)
        if start:
            try:
                peer.start()
            except S3Error as exc:
                pytest.fail(str(exc))
        return peer

    yield make
    for peer in peers:
        peer.stop()
