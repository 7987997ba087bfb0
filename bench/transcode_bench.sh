#!/usr/bin/env bash
# End-to-end transcoding benchmark, in one run, on loopback: is the pipeline CPU-bound by the
# codec, i.e. does routing a study with `transcode:` reach the cores' raw encode rate?
#   r1        build/bin/conduit_transcode_rate --threads 1: the codec alone on one core, every
#             frame of the study in memory (our wrapper is within 5% of the raw library)
#   pipeline  the study queued in conduit for a destination that is down, then the destination
#             started: rate = (N - 1) / (first -> last arrival at the destination), the steady
#             state (the start-up, receiver start -> first arrival, is printed on its own)
# and prints, per transfer syntax, pipeline / (cores x r1) against the 0.9 target, and what
# bounds it: the CPU each instance costs conduit and the whole box, against the codec's 1/r1.
#
# usage: bench/transcode_bench.sh [--study DIR] [--slices N] [--rounds R] [--syntax UID ...]
#                                 [--associations K] [--pool-threads T] [--conduit PATH]
#                                 [--receiver storescp|sink] [--keep]
#   --study DIR         the *.dcm files in DIR (native 512x512 CT, e.g. /tmp/study500) instead
#                       of generating one with bench/generate_ct_study.py
#   --slices N          slices to generate (default 500; ignored with --study)
#   --rounds R          interleaved rounds; medians are reported (default 3)
#   --syntax UID        a target transfer syntax; repeat for several (default: HTJ2K lossless
#                       1.2.840.10008.1.2.4.201 and JPEG-LS lossless 1.2.840.10008.1.2.4.80)
#   --associations K    the destination's max_associations (default 4)
#   --pool-threads T    transcoding.threads (default 0: one worker per core, the target's
#                       premise); more than cores shows what workers blocked in I/O cost
#   --conduit PATH      conduit binary (default build/bin/conduit; conduit_transcode_rate,
#                       conduit_durable_write_floor and conduit_cstore_sink are taken from the
#                       same directory)
#   --receiver R        storescp (default): DCMTK's storescp wherever it can receive the
#                       syntax, conduit_cstore_sink for the HTJ2K ones; sink: the sink for every
#                       syntax, which leaves the cores more of their CPU (about 0.2 ms per
#                       instance instead of storescp's 0.9-1.3 ms)
#   --keep              keep the work directory (configs, logs, spools, received files)
#   env DELIVERY_TIMEOUT  seconds from the receiver's start before a missing delivery fails (300)
#   env STALL_TIMEOUT     seconds without a new delivery before the run fails (30)
#
# Pipeline phase, per syntax and round, with fresh processes, ports and spool:
#   conduit serve: transcoding {threads: 0 (one worker per core; --pool-threads), profiles:
#     [{name: p, transfer_syntax: UID}]}; rules route everything to `pacs` with `transcode: p`;
#     destination pacs = a port where nothing listens yet, max_associations K, retry
#     {initial_delay_ms: 100, multiplier: 1, jitter_percent: 0, max_delay_seconds: 1,
#     breaker_failures: 1}: the circuit
#     opens at once and is probed every 100 ms, so the first probe after the receiver starts
#     comes within 0.1 s.
#   storescu -R (one association, TCP_NODELAY=1) sends all N; they queue (the destination is
#     down; a lane opens its association before it prepares, so nothing is transcoded yet).
#   sync; then t0, and the receiver is started on that port: storescp +B --fork (bit-preserving,
#     no fsync; an association profile that accepts CT Image Storage in UID and the uncompressed
#     syntaxes). DCMTK 3.6.7 cannot receive the HTJ2K syntaxes (its DIMSE layer aborts on a
#     transfer syntax it does not know, whatever the association profile accepted, even with
#     --ignore): for 1.2.840.10008.1.2.4.201-203 the receiver is build/bin/conduit_cstore_sink
#     (bench/cstore_sink.cpp: accepts each context in its first proposed syntax, answers 0x0000
#     after the last fragment, keeps nothing, tallies per syntax).
#   Arrival times come from the receiver, so that polling costs nothing in the window: the mtimes
#     of storescp's files (+B writes each as it arrives), the sink's first and last answer per
#     association. A poller scrapes conduit's metrics every 0.25 s only to see delivered reach N
#     (conduit counts an instance delivered when the C-STORE-RSP has come back), a dead letter
#     or a stall, and to read conduit's and the box's CPU time over the delivery.
#   Checked afterwards: conduit_transcodes_total{target=KEYWORD,outcome="ok"} = N (the PS3.6
#   keyword of UID, e.g. HTJ2KLossless: the metric never carries UIDs), none dead-lettered;
#   storescp: N files, the first and last received file's (0002,0010) is UID (dcmdump -Un
#   +P 0002,0010); the sink: N instances in UID and none in another syntax.
#
# Also printed, to see where the time goes: the codec on `cores` threads at once (no I/O); CPU
# per instance, of conduit (every thread) and of the whole box (conduit, receiver, the bench's
# poller), against the codec's 1/r1 -- their quotients are the best ratio conduit could reach
# with the cores to itself, and the best this box can show with every core busy on the same
# work mix; the best ratio of a router whose only work is the codec (at its all-cores rate,
# beside the same receiver): below the target, no implementation meets it here; the pipeline's mean encode time per frame (conduit_transcode_frame_seconds, wall)
# and the workers' mean time in it; C-STORE round trip; the durable-write floor for files of
# the transcoded size (every transcoded copy is fdatasync'ed before it is sent).
#
# Exit status: 0 all delivered (whatever the speed), 1 functional failure, 2 bad usage / missing
# tools, 3 conduit refused the configuration.
set -Eeuo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
PYTHON=/usr/bin/python3

SLICES=500
STUDY_DIR=""
CONDUIT="$REPO_ROOT/build/bin/conduit"
KEEP=0
ROUNDS=3
ASSOCIATIONS=4
POOL_THREADS=0
RECEIVER_KIND=storescp
declare -a SYNTAXES=()
HOST=127.0.0.1
START_TIMEOUT=20      # a listener must answer C-ECHO within this
RUN_TIMEOUT=600       # one storescu run
DELIVERY_TIMEOUT=${DELIVERY_TIMEOUT:-300}
STALL_TIMEOUT=${STALL_TIMEOUT:-30}  # no new delivery for this long: fail
STOP_TIMEOUT=15
TARGET=0.9

STORESCU_OPTS=(-R -to 10 -ta 30 -ts 60 -aet BENCHSCU)
STORESCP_PDU=131072

usage() {
  sed -n '12,33p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

while (($#)); do
  case "$1" in
    --study) STUDY_DIR=${2:?--study needs a directory}; shift 2 ;;
    --slices) SLICES=${2:?--slices needs a value}; shift 2 ;;
    --rounds) ROUNDS=${2:?--rounds needs a value}; shift 2 ;;
    --syntax) SYNTAXES+=("${2:?--syntax needs a UID}"); shift 2 ;;
    --associations) ASSOCIATIONS=${2:?--associations needs a value}; shift 2 ;;
    --pool-threads) POOL_THREADS=${2:?--pool-threads needs a value}; shift 2 ;;
    --conduit) CONDUIT=${2:?--conduit needs a path}; shift 2 ;;
    --receiver) RECEIVER_KIND=${2:?--receiver needs storescp or sink}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown option: $1" >&2; usage ;;
  esac
done
((${#SYNTAXES[@]})) || SYNTAXES=(1.2.840.10008.1.2.4.201 1.2.840.10008.1.2.4.80)
[[ $SLICES =~ ^[1-9][0-9]*$ ]] || { echo "--slices must be a positive integer" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "--rounds must be a positive integer" >&2; exit 2; }
[[ $ASSOCIATIONS =~ ^[1-9][0-9]*$ ]] \
  || { echo "--associations must be a positive integer" >&2; exit 2; }
[[ $POOL_THREADS =~ ^[0-9]+$ ]] || { echo "--pool-threads must be 0 or more" >&2; exit 2; }
[[ $RECEIVER_KIND == storescp || $RECEIVER_KIND == sink ]] \
  || { echo "--receiver must be storescp or sink" >&2; exit 2; }
for uid in "${SYNTAXES[@]}"; do
  [[ $uid =~ ^[0-9]+(\.[0-9]+)*$ ]] || { echo "--syntax $uid is not a UID" >&2; exit 2; }
done

BIN_DIR=$(dirname "$CONDUIT")
RATE_BIN="$BIN_DIR/conduit_transcode_rate"
FLOOR_BIN="$BIN_DIR/conduit_durable_write_floor"
SINK_BIN="$BIN_DIR/conduit_cstore_sink"
for tool in storescp storescu echoscu dcmdump timeout find setsid sync "$PYTHON"; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
for bin in "$CONDUIT" "$RATE_BIN" "$FLOOR_BIN" "$SINK_BIN"; do
  [[ -x $bin ]] || { echo "not found or not executable: $bin (build with scripts/build)" >&2
                     exit 2; }
done

export TCP_NODELAY=1
CORES=$(nproc)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/conduit-transcode-bench.XXXXXX")
# Process bookkeeping, cleanup traps, fail, listeners, timing/statistics helpers, load_study.
# shellcheck source-path=SCRIPTDIR source=bench_lib.sh
source "$SCRIPT_DIR/bench_lib.sh"

load_study

# ---------------------------------------------------------------- helpers -----------------
# field NAME LINE: the value after NAME in conduit_transcode_rate's "key value ..." line
field() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' \
  <<<"$2"; }
# median_of DECIMALS VALUES...: median of unsorted values
median_of() { local d=$1; shift; printf '%s\n' "$@" | sort -g | median "$d"; }
spread_of() { printf '%s\n' "$@" | sort -g | spread; }

# storescp's association profile: CT Image Storage (and Verification) in the target syntax and
# the uncompressed ones. DCMTK 3.6.7 has no name for the HTJ2K UIDs; the profile takes UIDs.
write_scp_profile() {  # write_scp_profile FILE UID
  cat >"$1" <<CFG
[[TransferSyntaxes]]
[Syntaxes]
TransferSyntax1 = $2
TransferSyntax2 = 1.2.840.10008.1.2.1
TransferSyntax3 = 1.2.840.10008.1.2

[[PresentationContexts]]
[Contexts]
PresentationContext1 = 1.2.840.10008.5.1.4.1.1.2\\Syntaxes
PresentationContext2 = 1.2.840.10008.1.1\\Syntaxes

[[Profiles]]
[P]
PresentationContexts = Contexts
CFG
}

# write_conduit_config DIR SCP_PORT UID: sets C_CFG C_RULES C_PORT C_MPORT C_SPOOL
write_conduit_config() {
  local dir=$1 scp_port=$2 uid=$3
  C_SPOOL="$dir/spool"
  mkdir -p "$C_SPOOL"
  C_PORT=$(free_port)
  C_MPORT=$(free_port)
  while [[ $C_MPORT == "$C_PORT" || $C_MPORT == "$scp_port" ]]; do C_MPORT=$(free_port); done
  C_RULES="$dir/rules.yaml"
  C_CFG="$dir/conduit.yaml"
  cat >"$C_RULES" <<YAML
version: 1
rules:
  - name: everything
    route:
      - destination: pacs
        transcode: p
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
transcoding:
  threads: $POOL_THREADS
  profiles:
    - name: p
      transfer_syntax: $uid
destinations:
  - name: pacs
    host: $HOST
    port: $scp_port
    called_ae: STORESCP
    max_associations: $ASSOCIATIONS
    retry:
      initial_delay_ms: 100
      multiplier: 1
      jitter_percent: 0
      max_delay_seconds: 1
      breaker_failures: 1
YAML
}

# The delivery poller: started just before the receiver. Scrapes conduit's metrics every 0.25 s
# (rarely: scraping costs conduit CPU, and the delivery times come from the receiver, not from
# here) until delivered reaches N, then prints one line of "key value" pairs: conduit_cpu
# (conduit's CPU seconds since the poller started), box_cpu (CPU seconds of all processes, all
# cores, same window), frame_sum and frame_mean (conduit_transcode_frame_seconds), send_mean
# (conduit_forward_send_seconds), sent_bytes, workers (conduit_transcode_workers), transcoded_ok. Exit 1 on a dead letter, conduit's
# death, a stall or the deadline.
POLLER="$WORK/poll_delivered.py"
cat >"$POLLER" <<'PY'
import os, re, sys, time, urllib.request
url, n, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
deadline, stall, uid = float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
# conduit_transcodes_total labels a syntax by its PS3.6 keyword, never by its UID.
KEYWORDS = {
    "1.2.840.10008.1.2": "ImplicitVRLittleEndian", "1.2.840.10008.1.2.1": "ExplicitVRLittleEndian",
    "1.2.840.10008.1.2.4.50": "JPEGBaseline8Bit", "1.2.840.10008.1.2.4.51": "JPEGExtended12Bit",
    "1.2.840.10008.1.2.4.57": "JPEGLossless", "1.2.840.10008.1.2.4.70": "JPEGLosslessSV1",
    "1.2.840.10008.1.2.4.80": "JPEGLSLossless", "1.2.840.10008.1.2.4.81": "JPEGLSNearLossless",
    "1.2.840.10008.1.2.4.90": "JPEG2000Lossless", "1.2.840.10008.1.2.4.91": "JPEG2000",
    "1.2.840.10008.1.2.4.201": "HTJ2KLossless", "1.2.840.10008.1.2.4.202": "HTJ2KLosslessRPCL",
    "1.2.840.10008.1.2.4.203": "HTJ2K", "1.2.840.10008.1.2.5": "RLELossless"}
PACS, TARGET, OK = 'destination="pacs"', f'target="{KEYWORDS.get(uid, uid)}"', 'outcome="ok"'
tick = os.sysconf("SC_CLK_TCK")
def proc_cpu():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick      # utime + stime
def box_cpu():
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / tick     # all but idle and iowait
def scrape():
    with urllib.request.urlopen(url, timeout=2) as r:
        text = r.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r'^(\w+)(\{[^}]*\})?\s+(\S+)', line)
        if m:
            samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return samples
def value(samples, name, *labels):
    return sum(v for (k, l), v in samples.items() if k == name and all(x in l for x in labels))
cpu0, box0 = proc_cpu(), box_cpu()
s, progress, t_progress = {}, -1.0, time.time()
while True:
    time.sleep(0.25)
    now = time.time()
    try:
        s = scrape()
    except OSError:
        if not os.path.exists(f"/proc/{pid}"):
            sys.exit("conduit died")
        continue
    delivered = value(s, "conduit_forward_delivered_total", PACS)
    dead = value(s, "conduit_forward_dead_lettered_total", PACS)
    if dead > 0:
        sys.exit(f"{dead:.0f} instance(s) dead-lettered: see conduit's log")
    if delivered >= n:
        cpu1, box1 = proc_cpu(), box_cpu()
        frames = value(s, "conduit_transcode_frame_seconds_count")
        frame_sum = value(s, "conduit_transcode_frame_seconds_sum")
        sends = value(s, "conduit_forward_send_seconds_count", PACS)
        print(f"conduit_cpu {cpu1 - cpu0:.2f} box_cpu {box1 - box0:.2f} "
              f"frame_sum {frame_sum:.4f} frame_mean {frame_sum / max(frames, 1):.6f} "
              f"send_mean "
              f"{value(s, 'conduit_forward_send_seconds_sum', PACS) / max(sends, 1):.6f} "
              f"sent_bytes {value(s, 'conduit_forward_bytes_total', PACS):.0f} "
              f"workers {value(s, 'conduit_transcode_workers'):.0f} "
              f"transcoded_ok {value(s, 'conduit_transcodes_total', TARGET, OK):.0f}")
        sys.exit(0)
    if delivered > progress:
        progress, t_progress = delivered, now
    elif now - t_progress > stall:
        sys.exit(f"no delivery for {stall:.0f} s ({delivered:.0f} of {n} delivered):"
                 " see the receiver's and conduit's logs")
    if now > deadline:
        sys.exit(f"{delivered:.0f} of {n} delivered by the deadline")
PY

# phase_pipeline ROUND UID: sets P_SECS P_STEADY P_FIRST P_INGEST P_STATS P_CODED_BYTES
# P_RECEIVER
phase_pipeline() {
  local round=$1 uid=$2 dir c_pid scp_port scp_out poll_pid rc=0 t0 t_ack t_in deadline
  local -a files
  dir="$WORK/r$round-${uid##*.}"
  mkdir -p "$dir"
  scp_out="$dir/received"
  mkdir -p "$scp_out"
  scp_port=$(free_port)
  # DCMTK 3.6.7's DIMSE layer refuses data sets in transfer syntaxes it does not know (the
  # HTJ2K ones: "Unsupported transfer syntax", association aborted, even with --ignore) when an
  # association profile accepted them; those go to conduit_cstore_sink instead.
  local -a receiver=(storescp +B --fork -pdu "$STORESCP_PDU" -aet STORESCP
                     -xf "$dir/storescp.cfg" P -od "$scp_out" "$scp_port")
  local use_sink=0 tally="$dir/sink.tally" why_sink="--receiver sink"
  if [[ $uid == 1.2.840.10008.1.2.4.20[123] ]]; then
    use_sink=1 why_sink="DCMTK 3.6.7 cannot receive $uid"
  fi
  [[ $RECEIVER_KIND == sink ]] && use_sink=1
  ((use_sink)) && receiver=("$SINK_BIN" "$scp_port" "$tally")
  write_conduit_config "$dir" "$scp_port" "$uid"
  write_scp_profile "$dir/storescp.cfg" "$uid"
  if conduit_refuses >&2; then
    echo "conduit ($CONDUIT) refuses the configuration or rules above (see $C_CFG with --keep)" >&2
    exit 3
  fi
  start_listener CONDUIT "$C_PORT" "$dir/conduit.log" "$CONDUIT" serve --config "$C_CFG"
  c_pid=$LISTENER_PID

  # Ingest: everything queues, the destination is down.
  mapfile -t files <"$ALL_LIST"
  t_in=$(now)
  timeout "$RUN_TIMEOUT" storescu "${STORESCU_OPTS[@]}" -aec CONDUIT "$HOST" "$C_PORT" \
    "${files[@]}" >"$dir/storescu.log" 2>&1 || rc=$?
  t_ack=$(now)
  ((rc == 0)) || { tail -n 20 "$dir/storescu.log" >&2; fail "storescu -> conduit ($rc)"; }
  P_INGEST=$(elapsed "$t_in" "$t_ack")
  settle  # the spool's writeback is not billed to the pipeline

  # The destination comes up: time until conduit has delivered all N.
  deadline=$(awk -v t="$(now)" -v d="$DELIVERY_TIMEOUT" 'BEGIN { printf "%.0f", t + d }')
  "$PYTHON" "$POLLER" "http://$HOST:$C_MPORT/metrics" "$N" "$c_pid" "$deadline" \
    "$STALL_TIMEOUT" "$uid" \
    >"$dir/poll.out" 2>"$dir/poll.log" &
  poll_pid=$!
  BG_PIDS+=("$poll_pid")
  t0=$(now)
  start_listener STORESCP "$scp_port" "$dir/storescp.log" "${receiver[@]}"
  local scp_pid=$LISTENER_PID
  wait "$poll_pid" || rc=$?
  forget_pid "$poll_pid"
  if ((rc != 0)); then
    echo "--- last lines of conduit's log" >&2; tail -n 15 "$dir/conduit.log" >&2 || true
    fail "delivery ($uid): $(cat "$dir/poll.log")"
  fi
  P_STATS=$(cat "$dir/poll.out")
  kill -0 "$c_pid" 2>/dev/null || fail "conduit exited during the run"

  # Correctness, cheaply: conduit transcoded N datasets to UID, delivered N, dead-lettered
  # none (the poller checks those); with storescp, N files, the first and last in UID; the sink
  # tallies N instances in UID and nothing else. The receiver also says when the first and the
  # last instance arrived: storescp +B writes each file as it receives it (the files' mtimes),
  # the sink notes when it answered.
  local ok received f ts t_first t_last
  ok=$(field transcoded_ok "$P_STATS")
  ((ok == N)) || fail "conduit_transcodes_total{target=<keyword of $uid>,outcome=\"ok\"}" \
    "is $ok, not $N"
  stop_pid "$c_pid"; forget_pid "$c_pid"  # ends the sink's associations: it writes its tally
  if ((use_sink)); then
    sleep 0.5
    read -r received t_first t_last < <(awk -v u="$uid" '
        $1 == u { n += $2; if (first == "" || $4 < first) first = $4; if ($5 > last) last = $5 }
        $1 != u { bad = 1 }
        END { printf "%d %s %s\n", (bad ? -1 : n), first, last }' "$tally" 2>/dev/null \
      || echo 0)
    ((received == N)) \
      || fail "the sink received $received instance(s) in $uid (-1: other syntaxes too)" \
        "(see $tally with --keep)"
    P_RECEIVER="conduit_cstore_sink ($why_sink; instances counted)"
  else
    # No `| head`: its early exit would be a SIGPIPE that pipefail turns into a failure.
    local -a received_files
    mapfile -t received_files < <(find "$scp_out" -type f | LC_ALL=C sort)
    received=${#received_files[@]}
    ((received == N)) || fail "$received files at storescp, expected $N"
    for f in "${received_files[0]}" "${received_files[-1]}"; do
      ts=$(dcmdump -Un +P 0002,0010 "$f" 2>/dev/null \
        | awk 'match($0, /\[[0-9.]+\]/) && !seen++ { print substr($0, RSTART + 1, RLENGTH - 2) }')
      [[ $ts == "$uid" ]] || fail "$f has transfer syntax '$ts', expected $uid"
    done
    read -r t_first t_last < <(find "$scp_out" -type f -printf '%T@\n' | sort -g \
      | awk 'NR == 1 { first = $1 } { last = $1 } END { print first, last }')
    P_RECEIVER="storescp +B --fork (files checked)"
  fi
  P_SECS=$(elapsed "$t0" "$t_last")
  P_STEADY=$(elapsed "$t_first" "$t_last")
  P_FIRST=$(elapsed "$t0" "$t_first")
  P_CODED_BYTES=$(($(field sent_bytes "$P_STATS") / N))
  stop_pid "$scp_pid"; forget_pid "$scp_pid"
  if ((!KEEP)); then rm -rf "$scp_out" "$C_SPOOL"; fi
  settle
}

# ---------------------------------------------------------------- rounds ------------------
declare -A R1=() RN=() PIPE=() WHOLE=() FIRST=() INGEST=() RATIO=() BUSY=() FRAME=() \
  CONDUIT_MS=() BOX_MS=() ALONE=() CEILING=() NOTHING_BUT_CODEC=() SEND=() CODED=() CR=() \
  WORKERS=() RECEIVER=()
per_instance_ms() { awk -v s="$1" -v n="$N" 'BEGIN { printf "%.2f", s * 1000 / n }'; }
settle
for ((r = 1; r <= ROUNDS; r++)); do
  for uid in "${SYNTAXES[@]}"; do
    echo "round $r/$ROUNDS, $uid: codec alone on 1 and $CORES thread(s) ..." >&2
    line=$("$RATE_BIN" --syntax "$uid" --threads 1 "$STUDY_DIR") || fail "conduit_transcode_rate"
    r1=$(field frames_per_second "$line")
    CR[$uid]+=" $(field compression_ratio "$line")"
    line=$("$RATE_BIN" --syntax "$uid" --threads "$CORES" "$STUDY_DIR") \
      || fail "conduit_transcode_rate --threads $CORES"
    rn=$(field frames_per_second "$line")
    RN[$uid]+=" $rn"
    echo "round $r/$ROUNDS, $uid: pipeline (ingest $N, then start the receiver) ..." >&2
    phase_pipeline "$r" "$uid"
    # Steady state: the N-1 intervals between the first and the last arrival.
    pipe=$(awk -v n="$N" -v t="$P_STEADY" 'BEGIN { printf "%.1f", (n - 1) / t }')
    R1[$uid]+=" $r1"
    PIPE[$uid]+=" $pipe"
    WHOLE[$uid]+=" $(awk -v n="$N" -v t="$P_SECS" 'BEGIN { printf "%.1f", n / t }')"
    RATIO[$uid]+=" $(awk -v p="$pipe" -v r="$r1" -v c="$CORES" \
      'BEGIN { printf "%.3f", p / (c * r) }')"
    FIRST[$uid]+=" $P_FIRST"
    INGEST[$uid]+=" $(awk -v n="$N" -v t="$P_INGEST" 'BEGIN { printf "%.1f", n / t }')"
    BUSY[$uid]+=" $(awk -v f="$(field frame_sum "$P_STATS")" -v t="$P_STEADY" \
      'BEGIN { printf "%.2f", f / t }')"
    WORKERS[$uid]=$(field workers "$P_STATS")
    FRAME[$uid]+=" $(awk -v f="$(field frame_mean "$P_STATS")" 'BEGIN { printf "%.2f", f * 1000 }')"
    SEND[$uid]+=" $(awk -v f="$(field send_mean "$P_STATS")" 'BEGIN { printf "%.2f", f * 1000 }')"
    conduit_ms=$(per_instance_ms "$(field conduit_cpu "$P_STATS")")
    box_ms=$(per_instance_ms "$(field box_cpu "$P_STATS")")
    CONDUIT_MS[$uid]+=" $conduit_ms"
    BOX_MS[$uid]+=" $box_ms"
    # 1/r1 is the codec's CPU per instance (one frame each); what the rest costs on top bounds
    # the ratio: with every core busy doing the same mix, pipeline / (cores x r1) = (1/r1) / ms.
    ALONE[$uid]+=" $(awk -v r="$r1" -v m="$conduit_ms" 'BEGIN { printf "%.3f", 1000 / r / m }')"
    CEILING[$uid]+=" $(awk -v r="$r1" -v m="$box_ms" 'BEGIN { printf "%.3f", 1000 / r / m }')"
    # A router whose only work is the codec: every core encodes at the rate the codec alone
    # reaches on all cores (CPU per instance cores / rn), beside the receiver and the bench
    # (the box's CPU that is not conduit's). No implementation can show more on this box.
    NOTHING_BUT_CODEC[$uid]+=" $(awk -v r="$r1" -v rn="$rn" \
      -v c="$CORES" -v b="$box_ms" -v m="$conduit_ms" \
      'BEGIN { printf "%.3f", 1000 / r / (c * 1000 / rn + b - m) }')"
    CODED[$uid]=$P_CODED_BYTES
    RECEIVER[$uid]=$P_RECEIVER
    echo "  r1 $r1 frames/s, pipeline $pipe inst/s (first delivery after $P_FIRST s, last" \
      "after $P_SECS s)" >&2
  done
done

# The durable-write floor for files of the transcoded size: what fdatasync'ing every transcoded
# copy costs one worker on this disk (no encoding, no network).
declare -A FLOOR=()
for uid in "${SYNTAXES[@]}"; do
  FLOOR[$uid]=$("$FLOOR_BIN" "$WORK/floor" "$N" "${CODED[$uid]}") || fail "durable-write floor"
done

# ---------------------------------------------------------------- report ------------------
row() { printf '%-52s %10s  %-8s %-13s %s\n' "$@"; }
# shellcheck disable=SC2086  # word splitting of the per-round lists is intended
{
echo
echo "Transcoding benchmark: $N instances" \
  "($(awk -v b="$STUDY_BYTES" 'BEGIN { printf "%.0f", b / 1048576 }') MB)," \
  "$ROUNDS round(s), $CORES cores, destination max_associations $ASSOCIATIONS," \
  "transcoding.threads $POOL_THREADS."
echo "Medians over rounds; last column min..max. Pipeline: all $N queued, then the receiver"
echo "started; rate = (N - 1) / (first -> last arrival at the receiver)."
for uid in "${SYNTAXES[@]}"; do
  r1=$(median_of 1 ${R1[$uid]})
  pipe=$(median_of 1 ${PIPE[$uid]})
  ratio=$(median_of 3 ${RATIO[$uid]})
  if ge "$ratio" "$TARGET"; then verdict=PASS; else verdict="BELOW TARGET"; fi
  echo
  echo "== $uid (compression ratio $(median_of 2 ${CR[$uid]}):1," \
    "$((${CODED[$uid]} / 1024)) KiB data set sent per instance)"
  echo "   receiver: ${RECEIVER[$uid]}"
  row "metric" "value" "target" "verdict" "spread"
  row "r1: codec alone, 1 thread (frames/s)" "$r1" "" "" "$(spread_of ${R1[$uid]})"
  row "cores x r1 (frames/s)" "$(awk -v r="$r1" -v c="$CORES" 'BEGIN { printf "%.1f", r * c }')" \
    "" "" ""
  row "pipeline: first -> last arrival, N-1 (inst/s)" "$pipe" "" "" "$(spread_of ${PIPE[$uid]})"
  row "  ratio pipeline / (cores x r1)" "$ratio" ">= $TARGET" "$verdict" \
    "$(spread_of ${RATIO[$uid]}) within rounds"
  row "  receiver start -> last arrival, N (inst/s)" "$(median_of 1 ${WHOLE[$uid]})" "" "" \
    "$(spread_of ${WHOLE[$uid]})"
  echo "  where the time goes:"
  row "  codec alone, $CORES threads at once (frames/s)" "$(median_of 1 ${RN[$uid]})" "" "" \
    "$(spread_of ${RN[$uid]})"
  row "    = x r1 (CPU scaling with no I/O at all)" \
    "$(ratio "$(median_of 1 ${RN[$uid]})" "$r1")" "" "" ""
  row "    pipeline / codec alone on $CORES threads" \
    "$(ratio "$pipe" "$(median_of 1 ${RN[$uid]})")" "" "" ""
  row "  receiver start -> first arrival (s)" "$(median_of 3 ${FIRST[$uid]})" "" "" \
    "$(spread_of ${FIRST[$uid]})"
  row "  CPU per instance (ms): the codec alone, 1/r1" \
    "$(awk -v r="$r1" 'BEGIN { printf "%.2f", 1000 / r }')" "" "" ""
  row "  CPU per instance (ms): conduit, every thread" "$(median_of 2 ${CONDUIT_MS[$uid]})" "" \
    "" "$(spread_of ${CONDUIT_MS[$uid]})"
  row "    ratio if conduit had the cores to itself" "$(median_of 3 ${ALONE[$uid]})" "" "" \
    "$(spread_of ${ALONE[$uid]})"
  row "  CPU per instance (ms): the box (+receiver, bench)" "$(median_of 2 ${BOX_MS[$uid]})" \
    "" "" "$(spread_of ${BOX_MS[$uid]})"
  row "    best ratio on this box, every core busy" "$(median_of 3 ${CEILING[$uid]})" "" "" \
    "$(spread_of ${CEILING[$uid]})"
  row "    best ratio of a router that only runs the codec" \
    "$(median_of 3 ${NOTHING_BUT_CODEC[$uid]})" "" "" "$(spread_of ${NOTHING_BUT_CODEC[$uid]})"
  row "  encode per frame in the pipeline, wall (ms)" "$(median_of 2 ${FRAME[$uid]})" "" "" \
    "$(spread_of ${FRAME[$uid]})"
  row "  workers in decode+encode, mean (of ${WORKERS[$uid]})" "$(median_of 2 ${BUSY[$uid]})" \
    "" "" "$(spread_of ${BUSY[$uid]})"
  row "  C-STORE request -> response, per instance (ms)" "$(median_of 2 ${SEND[$uid]})" "" "" \
    "$(spread_of ${SEND[$uid]})"
  row "  durable-write floor, 1 writer, $((${CODED[$uid]} / 1024)) KiB files (files/s)" \
    "${FLOOR[$uid]}" "" "" ""
  row "  (ingest while the destination was down, inst/s)" "$(median_of 1 ${INGEST[$uid]})" "" "" \
    "$(spread_of ${INGEST[$uid]})"
done
echo
echo "functional: every storescu exited 0; in every run conduit transcoded all $N to the"
echo "profile's syntax and delivered them, none dead-lettered; where storescp stored them (+B),"
echo "it holds $N files and the first and last carry the profile's transfer syntax; where the sink"
echo "received them, it counted $N in the profile's syntax and none in another"
}
exit 0
