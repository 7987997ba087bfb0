#!/usr/bin/env bash
# Cloud forwarding benchmark, in one run, on loopback: Conduit's STOW-RS and S3 forwarders
# against the naive client a site would script instead, on the same server, in every round:
#   STOW  (a) naive:   a sequential `curl` loop, one multipart/related POST per file, to
#                      Orthanc 1.10 + DICOMweb plugin 1.7 (<root>/studies)
#         (b) conduit: the study queued in conduit for that endpoint while it is down, then
#                      Orthanc started: rate = N / (Orthanc answering -> delivered = N)
#   S3    (a) naive:   a sequential `curl --aws-sigv4` loop, one PUT per file, to s3rver 3.7.1
#         (b) conduit: the same, queued while s3rver is down, then s3rver started
# and prints (b)/(a) for each against the 3x target, plus conduit's ingest rate (storescu ->
# conduit while the destination is down) so the reader sees what share of an end-to-end run
# forwarding would be.
#
# usage: bench/cloud_bench.sh [--study DIR] [--slices N] [--rounds R] [--parallel K]
#                             [--batch M] [--only stow|s3] [--conduit PATH] [--naive-only]
#                             [--keep]
#   --study DIR      send the *.dcm files in DIR (e.g. /tmp/study500) instead of generating a
#                    study with bench/generate_ct_study.py
#   --slices N       slices to generate (default 500; ignored with --study)
#   --rounds R       interleaved rounds (a),(b); medians are reported (default 3)
#   --parallel K     the destinations' parallel_requests (default 4)
#   --batch M        the STOW destination's max_instances_per_request (default 50)
#   --only KIND      measure only stow or only s3
#   --conduit PATH   conduit binary (default build/bin/conduit)
#   --naive-only     measure only the (a) curl loops (no conduit needed)
#   --keep           keep the work directory (configs, logs, spools, server storage)
#   env DELIVERY_TIMEOUT  seconds from the server's start before a missing delivery fails (300)
#   env STALL_TIMEOUT     seconds without a new delivery before the run fails (30)
#
# Why conduit's forwarding is timed alone (queued first, then the destination started): what is
# compared is forwarding, conduit's part against curl's; end-to-end, conduit's rate would also
# hold storescu's sending and conduit's durable ingest (printed separately, "ingest"), which the
# curl loop does not do at all. Conduit gets, per phase, a fresh spool, ports and this config:
#   destinations: [{name: web, type: stow, url: http://127.0.0.1:<P>/dicom-web,
#                   parallel_requests: K, max_instances_per_request: M, retry: R}]
#   (S3: {name: bucket, type: s3, endpoint: http://127.0.0.1:<P>, region: us-east-1,
#         bucket: images, path_style: true, access_key_id/secret_access_key: S3RVER,
#         key_template: "{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}.dcm",
#         parallel_requests: K, retry: R})
#   R = {initial_delay_ms: 100, multiplier: 1, jitter_percent: 0, max_delay_seconds: 1,
#        breaker_failures: 1}: nothing listens on <P> while storescu (-R, one association,
#   TCP_NODELAY=1) sends the study, so the circuit opens at once and is probed every 100 ms.
#   Then t0 = the server (fresh storage) answers its first HTTP request (polled every 10 ms;
#   the first probe after that comes within 0.1 s and is not subtracted); t_last =
#   conduit_forward_delivered_total{destination} reaches N (scraped every 50 ms; conduit counts
#   an instance delivered when the server's answer for it has come back).
# The curl loops time from the server answering to the last curl's exit, against a fresh
# server of the same kind: `curl -sS -f -X POST -H 'Content-Type: multipart/related;
# type="application/dicom"' -F "file=@F;type=application/dicom" <root>/studies` (the usual
# one-liner; Orthanc accepts the part's Content-Disposition) and `curl -sS -f --aws-sigv4
# aws:amz:us-east-1:s3 --user S3RVER:S3RVER -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD'
# -T F <endpoint>/images/<same key as conduit's>` (s3rver requires that header on V4 requests;
# curl 7.88 does not add it).
# Servers: Orthanc with only the DICOMweb plugin, StorageCompression false, its DICOM server
# off, 50 HTTP threads, a fresh storage and index directory per phase (wiped after); s3rver -s
# (silent) with a fresh directory per phase. Checked after every phase: the server holds N
# instances (Orthanc /statistics) or N objects (ListObjects); conduit dead-lettered nothing.
#
# Exit status: 0 all delivered (whatever the speed), 1 functional failure, 2 bad usage / missing
# tools, 3 conduit refused the configuration (this build has no cloud destinations yet; the
# naive rates of round 1 are still printed).
set -Eeuo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
PYTHON=/usr/bin/python3
ORTHANC=${ORTHANC:-/usr/sbin/Orthanc}
DICOMWEB_PLUGIN=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
NODE=${NODE:-/usr/bin/node}
S3RVER_JS="$REPO_ROOT/tools/s3rver/node_modules/s3rver/bin/s3rver.js"

SLICES=500
STUDY_DIR=""
CONDUIT="$REPO_ROOT/build/bin/conduit"
KEEP=0
ROUNDS=3
PARALLEL=4
BATCH=50
ONLY=""
NAIVE_ONLY=0
HOST=127.0.0.1
START_TIMEOUT=30      # a server must answer within this
RUN_TIMEOUT=600       # one storescu run, one curl loop
DELIVERY_TIMEOUT=${DELIVERY_TIMEOUT:-300}
STALL_TIMEOUT=${STALL_TIMEOUT:-30}
STOP_TIMEOUT=15
TARGET=3
BUCKET=images
REGION=us-east-1
KEY_TEMPLATE="{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}.dcm"

STORESCU_OPTS=(-R -to 10 -ta 30 -ts 60 -aet BENCHSCU)

usage() {
  sed -n '14,28p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

while (($#)); do
  case "$1" in
    --study) STUDY_DIR=${2:?--study needs a directory}; shift 2 ;;
    --slices) SLICES=${2:?--slices needs a value}; shift 2 ;;
    --rounds) ROUNDS=${2:?--rounds needs a value}; shift 2 ;;
    --parallel) PARALLEL=${2:?--parallel needs a value}; shift 2 ;;
    --batch) BATCH=${2:?--batch needs a value}; shift 2 ;;
    --only) ONLY=${2:?--only needs stow or s3}; shift 2 ;;
    --conduit) CONDUIT=${2:?--conduit needs a path}; shift 2 ;;
    --naive-only) NAIVE_ONLY=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown option: $1" >&2; usage ;;
  esac
done
[[ $SLICES =~ ^[1-9][0-9]*$ ]] || { echo "--slices must be a positive integer" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "--rounds must be a positive integer" >&2; exit 2; }
if ! [[ $PARALLEL =~ ^[1-9][0-9]*$ ]] || ((PARALLEL > 64)); then
  echo "--parallel must be 1-64" >&2; exit 2
fi
[[ $BATCH =~ ^[1-9][0-9]*$ ]] || { echo "--batch must be a positive integer" >&2; exit 2; }
case "$ONLY" in
  "") KINDS=(stow s3) ;;
  stow|s3) KINDS=("$ONLY") ;;
  *) echo "--only takes stow or s3" >&2; exit 2 ;;
esac

for tool in storescu echoscu curl timeout find setsid sync "$PYTHON"; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
for kind in "${KINDS[@]}"; do
  if [[ $kind == stow ]]; then
    [[ -x $ORTHANC && -f $DICOMWEB_PLUGIN ]] \
      || { echo "missing Orthanc ($ORTHANC) or its DICOMweb plugin (orthanc-dicomweb)" >&2
           exit 2; }
  else
    [[ -x $NODE && -f $S3RVER_JS ]] \
      || { echo "missing node ($NODE) or s3rver ($S3RVER_JS): run scripts/install-deps" >&2
           exit 2; }
  fi
done
if ((!NAIVE_ONLY)); then
  [[ -x $CONDUIT ]] || { echo "conduit binary not found or not executable: $CONDUIT" \
    "(build it, pass --conduit PATH, or use --naive-only)" >&2; exit 2; }
fi

export TCP_NODELAY=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/conduit-cloud-bench.XXXXXX")
# Process bookkeeping, cleanup traps, fail, listeners, timing/statistics helpers, load_study.
# shellcheck source-path=SCRIPTDIR source=bench_lib.sh
source "$SCRIPT_DIR/bench_lib.sh"

load_study

# ---------------------------------------------------------------- helpers -----------------
# One Python helper for what bash does badly: object keys, HTTP waits, metric polling, counts.
HELPER="$WORK/cloud_helper.py"
cat >"$HELPER" <<'PY'
import re, sys, time, urllib.error, urllib.request, xml.etree.ElementTree as ET

def keys(list_path, template):
    """file<TAB>key for each file, the key as conduit's template gives it (UIDs are safe)."""
    import pydicom
    for path in open(list_path).read().split("\n"):
        if path:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            key = template.format(StudyInstanceUID=ds.StudyInstanceUID,
                                  SeriesInstanceUID=ds.SeriesInstanceUID,
                                  SOPInstanceUID=ds.SOPInstanceUID)
            print(f"{path}\t{key}")

def wait_http(url, pid, timeout):
    """Prints the time (epoch s) at which URL first answered 200; exit 1 if pid dies first or
    after `timeout` seconds."""
    deadline = time.time() + float(timeout)
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    print(f"{time.time():.6f}")
                    return 0
        except (OSError, urllib.error.URLError):
            pass
        try:
            with open(f"/proc/{pid}/stat"):
                pass
        except OSError:
            print(f"pid {pid} exited before {url} answered", file=sys.stderr)
            return 1
        time.sleep(0.01)
    print(f"{url} did not answer within {timeout}s", file=sys.stderr)
    return 1

def scrape(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        text = r.read().decode()
    out = []
    for line in text.splitlines():
        m = re.match(r'^(\w+)(\{[^}]*\})?\s+(\S+)', line)
        if m and not line.startswith("#"):
            out.append((m.group(1), m.group(2) or "", float(m.group(3))))
    return out

def value(samples, name, *labels):
    return sum(v for n, l, v in samples if n == name and all(x in l for x in labels))

def poll_delivered(url, dest, n, pid, deadline, stall):
    """Prints "t_last T requests R codes C=K,..." once delivered{dest} reaches n; exit 1 on a
    dead letter, conduit's death, a stall or the deadline."""
    n, deadline, stall = int(n), float(deadline), float(stall)
    label = f'destination="{dest}"'
    progress, t_progress, samples = -1.0, time.time(), []
    while True:
        now = time.time()
        try:
            samples = scrape(url)
        except OSError:
            try:
                open(f"/proc/{pid}/stat").close()
            except OSError:
                sys.exit("conduit died")
            samples = []
        if samples:
            delivered = value(samples, "conduit_forward_delivered_total", label)
            dead = value(samples, "conduit_forward_dead_lettered_total", label)
            if dead > 0:
                sys.exit(f"{dead:.0f} instance(s) dead-lettered: see conduit's log")
            if delivered > progress:
                progress, t_progress = delivered, now
            elif delivered > 0 and now - t_progress > stall:
                sys.exit(f"no delivery for {stall:.0f} s ({delivered:.0f} of {n})")
            if delivered >= n:
                codes = {}
                for name, l, v in samples:
                    if name == "conduit_forward_http_responses_total" and label in l:
                        m = re.search(r'code="([^"]*)"', l)
                        if m and v:
                            codes[m.group(1)] = codes.get(m.group(1), 0) + v
                requests = sum(codes.values())
                print(f"t_last {now:.6f} requests {requests:.0f} codes "
                      + (",".join(f"{c}={v:.0f}" for c, v in sorted(codes.items())) or "-"))
                return 0
        if now > deadline:
            sys.exit(f"{value(samples, 'conduit_forward_delivered_total', label):.0f} "
                     f"of {n} delivered by the deadline")
        time.sleep(0.05)

def count_objects(endpoint, bucket):
    ns = "{http://doc.s3.amazonaws.com/2006-03-01/}"
    total, marker = 0, ""
    while True:
        q = urllib.parse.urlencode({"marker": marker, "max-keys": "1000"})
        with urllib.request.urlopen(f"{endpoint}/{bucket}?{q}", timeout=30) as r:
            root = ET.fromstring(r.read())
        page = [c.findtext(f"{ns}Key") for c in root.findall(f"{ns}Contents")]
        total += len(page)
        if root.findtext(f"{ns}IsTruncated") != "true" or not page:
            print(total)
            return 0
        marker = page[-1]

import urllib.parse
cmd, args = sys.argv[1], sys.argv[2:]
sys.exit({"keys": keys, "wait-http": wait_http, "poll-delivered": poll_delivered,
          "count-objects": count_objects}[cmd](*args) or 0)
PY

KEYS="$WORK/keys.tsv"
if [[ " ${KINDS[*]} " == *" s3 "* ]]; then
  "$PYTHON" "$HELPER" keys "$ALL_LIST" "$KEY_TEMPLATE" >"$KEYS" || fail "reading the study's UIDs"
fi

# start_server LOG COMMAND...: in the background as its own process group leader; sets
# SERVER_PID (tracked for cleanup).
start_server() {
  local log=$1
  shift
  setsid "$@" >"$log" 2>&1 </dev/null &
  SERVER_PID=$!
  BG_PIDS+=("$SERVER_PID")
  GROUP_LEADER[$SERVER_PID]=1
}

# wait_server URL LOG: until URL answers 200; sets T_UP (epoch s) or fails with the log's tail.
wait_server() {
  local url=$1 log=$2
  if ! T_UP=$("$PYTHON" "$HELPER" wait-http "$url" "$SERVER_PID" "$START_TIMEOUT"); then
    echo "--- last lines of $log" >&2; tail -n 30 "$log" >&2 || true
    fail "server at $url did not come up"
  fi
}

stop_server() { stop_pid "$SERVER_PID"; forget_pid "$SERVER_PID"; }

# start_orthanc DIR PORT: Orthanc + DICOMweb, fresh storage in DIR; sets SERVER_PID (not
# waited for: the caller times from when it answers)
start_orthanc() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  cat >"$dir/orthanc.json" <<JSON
{
  "Name": "conduit-cloud-bench",
  "StorageDirectory": "$dir/storage",
  "IndexDirectory": "$dir/index",
  "StorageCompression": false,
  "MaximumStorageSize": 0,
  "MaximumPatientCount": 0,
  "Plugins": ["$DICOMWEB_PLUGIN"],
  "DicomWeb": {"Enable": true, "Root": "/dicom-web/", "EnableWado": true, "Ssl": false,
               "StudiesMetadata": "MainDicomTags", "SeriesMetadata": "MainDicomTags"},
  "HttpServerEnabled": true,
  "HttpPort": $port,
  "HttpThreadsCount": 50,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "SslEnabled": false,
  "DicomServerEnabled": false,
  "SaveJobs": false,
  "StorageAccessOnFind": "Never",
  "KeepAlive": true,
  "TcpNoDelay": true
}
JSON
  start_server "$dir/orthanc.log" "$ORTHANC" --no-jobs "$dir/orthanc.json"
}

# start_s3rver DIR PORT: s3rver, silent, fresh directory, bucket $BUCKET; sets SERVER_PID
start_s3rver() {
  local dir=$1 port=$2
  mkdir -p "$dir/data"
  start_server "$dir/s3rver.log" "$NODE" "$S3RVER_JS" -s -d "$dir/data" -a "$HOST" \
    -p "$port" --configure-bucket "$BUCKET"
}

server_log() {  # server_log KIND DIR: the server's log file
  if [[ $1 == stow ]]; then echo "$2/orthanc.log"; else echo "$2/s3rver.log"; fi
}

server_url() {  # server_url KIND PORT: what wait_server polls
  if [[ $1 == stow ]]; then echo "http://$HOST:$2/system"; else echo "http://$HOST:$2/$BUCKET"; fi
}

# check_stored KIND PORT: the server holds N instances / objects, or fail
check_stored() {
  local kind=$1 port=$2 got
  if [[ $kind == stow ]]; then
    got=$(curl -sS "http://$HOST:$port/statistics" | "$PYTHON" -c \
      'import json, sys; print(json.load(sys.stdin)["CountInstances"])') || got="?"
  else
    got=$("$PYTHON" "$HELPER" count-objects "http://$HOST:$port" "$BUCKET") || got="?"
  fi
  [[ $got == "$N" ]] || fail "$kind server holds $got of $N after the run"
}

# phase_naive KIND ROUND: (a); sets PHASE_SECS
phase_naive() {
  local kind=$1 dir="$WORK/r$2-$1-naive" port t_end file key url
  local -a files
  mkdir -p "$dir"
  port=$(free_port)
  if [[ $kind == stow ]]; then start_orthanc "$dir/server" "$port"; else
    start_s3rver "$dir/server" "$port"; fi
  wait_server "$(server_url "$kind" "$port")" "$(server_log "$kind" "$dir/server")"
  settle
  T0=$(now)
  if [[ $kind == stow ]]; then
    url="http://$HOST:$port/dicom-web/studies"
    mapfile -t files <"$ALL_LIST"
    for file in "${files[@]}"; do
      timeout "$RUN_TIMEOUT" curl -sS -f -o /dev/null -X POST \
        -H 'Content-Type: multipart/related; type="application/dicom"' \
        -F "file=@$file;type=application/dicom" "$url" 2>>"$dir/curl.log" \
        || { tail -n 5 "$dir/curl.log" >&2; fail "curl POST of $file"; }
    done
  else
    while IFS=$'\t' read -r file key; do
      timeout "$RUN_TIMEOUT" curl -sS -f -o /dev/null --aws-sigv4 "aws:amz:$REGION:s3" \
        --user S3RVER:S3RVER -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
        -H 'Content-Type: application/dicom' -T "$file" \
        "http://$HOST:$port/$BUCKET/$key" 2>>"$dir/curl.log" \
        || { tail -n 5 "$dir/curl.log" >&2; fail "curl PUT of $file"; }
    done <"$KEYS"
  fi
  t_end=$(now)
  PHASE_SECS=$(elapsed "$T0" "$t_end")
  check_stored "$kind" "$port"
  stop_server
  ((KEEP)) || rm -rf "$dir/server"
  settle
}

# write_conduit_config KIND DIR SERVER_PORT: sets C_CFG C_RULES C_PORT C_MPORT C_SPOOL DEST
write_conduit_config() {
  local kind=$1 dir=$2 server_port=$3
  C_SPOOL="$dir/spool"
  mkdir -p "$C_SPOOL"
  C_PORT=$(free_port)
  C_MPORT=$(free_port)
  while [[ $C_MPORT == "$C_PORT" || $C_MPORT == "$server_port" ]]; do C_MPORT=$(free_port); done
  if [[ $kind == stow ]]; then DEST=web; else DEST=bucket; fi
  C_RULES="$dir/rules.yaml"
  C_CFG="$dir/conduit.yaml"
  cat >"$C_RULES" <<YAML
version: 1
rules:
  - name: everything
    route: [$DEST]
YAML
  cat >"$C_CFG" <<YAML
listener:
  bind_address: $HOST
  port: $C_PORT
  ae_title: CONDUIT
spool:
  directory: $C_SPOOL
metrics:
  listen: $HOST:$C_MPORT
admin:
  socket: $dir/admin.sock
rules:
  file: $C_RULES
destinations:
YAML
  if [[ $kind == stow ]]; then
    cat >>"$C_CFG" <<YAML
  - name: web
    type: stow
    url: http://$HOST:$server_port/dicom-web
    parallel_requests: $PARALLEL
    max_instances_per_request: $BATCH
YAML
  else
    cat >>"$C_CFG" <<YAML
  - name: bucket
    type: s3
    endpoint: http://$HOST:$server_port
    region: $REGION
    bucket: $BUCKET
    path_style: true
    key_template: "$KEY_TEMPLATE"
    access_key_id: S3RVER
    secret_access_key: S3RVER
    parallel_requests: $PARALLEL
YAML
  fi
  cat >>"$C_CFG" <<YAML
    retry:
      initial_delay_ms: 100
      multiplier: 1
      jitter_percent: 0
      max_delay_seconds: 1
      breaker_failures: 1
YAML
}

# phase_conduit KIND ROUND: (b); sets PHASE_SECS INGEST_SECS PHASE_REQUESTS PHASE_CODES
phase_conduit() {
  local kind=$1 dir="$WORK/r$2-$1-conduit" port c_pid rc=0 deadline result t_ingest0
  local -a files
  mapfile -t files <"$ALL_LIST"
  mkdir -p "$dir"
  port=$(free_port)
  write_conduit_config "$kind" "$dir" "$port"
  start_listener CONDUIT "$C_PORT" "$dir/conduit.log" "$CONDUIT" serve --config "$C_CFG"
  c_pid=$LISTENER_PID
  # The destination is down: every instance is made durable and queued.
  t_ingest0=$(now)
  timeout "$RUN_TIMEOUT" storescu "${STORESCU_OPTS[@]}" -aec CONDUIT "$HOST" "$C_PORT" \
    "${files[@]}" >"$dir/storescu.log" 2>&1 || rc=$?
  INGEST_SECS=$(elapsed "$t_ingest0" "$(now)")
  ((rc == 0)) || { tail -n 20 "$dir/storescu.log" >&2; fail "storescu -> conduit ($kind)"; }
  settle
  if [[ $kind == stow ]]; then start_orthanc "$dir/server" "$port"; else
    start_s3rver "$dir/server" "$port"; fi
  deadline=$(awk -v t="$(now)" -v d="$DELIVERY_TIMEOUT" 'BEGIN { printf "%.0f", t + d }')
  "$PYTHON" "$HELPER" poll-delivered "http://$HOST:$C_MPORT/metrics" "$DEST" "$N" "$c_pid" \
    "$deadline" "$STALL_TIMEOUT" >"$dir/delivered" 2>"$dir/poller.log" &
  local poll_pid=$!
  BG_PIDS+=("$poll_pid")
  wait_server "$(server_url "$kind" "$port")" "$(server_log "$kind" "$dir/server")"
  rc=0
  wait "$poll_pid" || rc=$?
  forget_pid "$poll_pid"
  if ((rc != 0)); then
    echo "--- last lines of $dir/conduit.log" >&2; tail -n 20 "$dir/conduit.log" >&2 || true
    fail "conduit -> $kind: $(cat "$dir/poller.log")"
  fi
  result=$(cat "$dir/delivered")
  PHASE_SECS=$(elapsed "$T_UP" "$(awk '{ print $2 }' <<<"$result")")
  PHASE_REQUESTS=$(awk '{ print $4 }' <<<"$result")
  PHASE_CODES=$(awk '{ print $6 }' <<<"$result")
  check_stored "$kind" "$port"
  kill -0 "$c_pid" 2>/dev/null \
    || { tail -n 30 "$dir/conduit.log" >&2; fail "conduit exited during the run"; }
  stop_pid "$c_pid"; forget_pid "$c_pid"
  stop_server
  ((KEEP)) || rm -rf "$C_SPOOL" "$dir/server"
  settle
}

# ---------------------------------------------------------------- rounds ------------------
declare -A T_NAIVE=() T_CONDUIT=() T_INGEST=() REQS=() CODES=()
settle
for ((r = 1; r <= ROUNDS; r++)); do
  for kind in "${KINDS[@]}"; do
    echo "round $r/$ROUNDS: $kind (a) naive curl loop, $N files ..." >&2
    phase_naive "$kind" "$r"
    T_NAIVE[$kind]+="$PHASE_SECS "
    if ((r == 1 && !NAIVE_ONLY)); then
      mkdir -p "$WORK/precheck-$kind"
      write_conduit_config "$kind" "$WORK/precheck-$kind" 104
      if conduit_refuses >&2; then
        echo "conduit ($CONDUIT) refuses the configuration above: this build has no $kind" \
          "destination yet (or the keys changed; see $C_CFG with --keep)." >&2
        echo "(a) naive $kind: $(awk -v n="$N" -v t="$PHASE_SECS" \
          'BEGIN { printf "%.1f", n / t }') inst/s (round 1); (b) not measured" >&2
        exit 3
      fi
    fi
    ((NAIVE_ONLY)) && continue
    echo "round $r/$ROUNDS: $kind (b) conduit, $PARALLEL parallel requests ..." >&2
    phase_conduit "$kind" "$r"
    T_CONDUIT[$kind]+="$PHASE_SECS "
    T_INGEST[$kind]+="$INGEST_SECS "
    REQS[$kind]+="$PHASE_REQUESTS "
    CODES[$kind]="$PHASE_CODES"
  done
done

# ---------------------------------------------------------------- report ------------------
row() { printf '%-58s %10s  %-9s %-12s %s\n' "$@"; }
# shellcheck disable=SC2086  # word splitting of the space-separated lists is intended
rates_of() { rates "$N" $1; }

MB=$(awk -v b="$STUDY_BYTES" 'BEGIN { printf "%.0f", b / 1048576 }')
echo
echo "Cloud forwarding benchmark: $N instances ($MB MB), $ROUNDS interleaved round(s)," \
  "$(nproc) cores."
echo "Medians over rounds; last column min..max. Conduit: the study queued while the server is"
echo "down, timed from the server answering to delivered = N; curl: a sequential loop, one"
echo "request per file, timed from the server answering to the last curl's exit."
row "metric" "value" "target" "verdict" "spread"
row "----------------------------------------------------------" "----------" "---------" \
  "------------" "------"
for kind in "${KINDS[@]}"; do
  if [[ $kind == stow ]]; then
    echo "STOW-RS to Orthanc $("$ORTHANC" --version 2>/dev/null | head -n 1 | awk '{ print $2 }')" \
      "+ DICOMweb plugin (POST <root>/studies)"
    what="one POST per file"
  else
    echo "S3 PUT to s3rver $(sed -n 's/.*"version": "\(.*\)".*/\1/p' \
      "$(dirname "$S3RVER_JS")/../package.json" | head -n 1) (path style, SigV4)"
    what="one PUT per file"
  fi
  A_RATES=$(rates_of "${T_NAIVE[$kind]}")
  A_RATE=$(median 1 <<<"$A_RATES")
  row "  (a) curl loop, $what (inst/s)" "$A_RATE" "reference" "" "$(spread <<<"$A_RATES")"
  ((NAIVE_ONLY)) && continue
  B_RATES=$(rates_of "${T_CONDUIT[$kind]}")
  B_RATE=$(median 1 <<<"$B_RATES")
  R=$(ratio "$B_RATE" "$A_RATE")
  read -r -a ta <<<"${T_NAIVE[$kind]}"
  read -r -a tb <<<"${T_CONDUIT[$kind]}"
  R_SPREAD=$(for ((i = 0; i < ROUNDS; i++)); do ratio "${ta[i]}" "${tb[i]}"; echo; done \
    | sort -g | spread)
  if ge "$R" "$TARGET"; then V=PASS; else V="BELOW TARGET"; fi
  if [[ $kind == stow ]]; then
    row "  (b) conduit, $PARALLEL parallel x <= $BATCH inst/request (inst/s)" "$B_RATE" "" "" \
      "$(spread <<<"$B_RATES")"
  else
    row "  (b) conduit, $PARALLEL parallel requests (inst/s)" "$B_RATE" "" "" \
      "$(spread <<<"$B_RATES")"
  fi
  row "  ratio (b) / (a)" "$R" ">= $TARGET" "$V" "$R_SPREAD within rounds"
  read -r -a reqs <<<"${REQS[$kind]}"
  REQ=$(printf '%s\n' "${reqs[@]}" | sort -g | median 0)
  row "  (b) HTTP requests per run (last run's codes: ${CODES[$kind]})" "$REQ" "" "" \
    "$(awk -v n="$N" -v q="$REQ" 'BEGIN { if (q > 0) printf "%.1f inst/request", n / q }')"
  I_RATES=$(rates_of "${T_INGEST[$kind]}")
  row "  conduit ingest while the server is down (inst/s)" "$(median 1 <<<"$I_RATES")" "" "" \
    "$(spread <<<"$I_RATES")"
  SHARE=$(awk -v b="$B_RATE" -v i="$(median 1 <<<"$I_RATES")" \
    'BEGIN { printf "%.0f%%", 100 * (1 / b) / (1 / b + 1 / i) }')
  row "  forwarding's share of storescu -> conduit -> server" "$SHARE" "" "" \
    "1/(b) / (1/(b) + 1/ingest)"
done
echo "functional: every server held all $N instances after every run; conduit dead-lettered" \
  "nothing"
exit 0
