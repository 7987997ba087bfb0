#!/usr/bin/env bash
# End-to-end forwarding benchmark, in one run, on loopback:
#   (a) direct:  storescu --> storescp                           (the reference)
#   (b) routed:  storescu --> conduit serve --> storescp         (rules route everything there)
#   (c) ingest:  storescu --> conduit serve (no rules: spooled durably, not forwarded)
# (c) is the ceiling for (b) on this disk: a router that acknowledges only durable data cannot
# forward faster than it can make data durable.
# and prints (b)/(a) against the 0.8 target, plus the delay from storescu's last acknowledgement
# to the last complete delivery against the 1 s target. Ratios, not absolute rates, mean
# something on a shared 2-core box; both paths run back to back in every round.
#
# usage: bench/forward_bench.sh [--study DIR] [--slices N] [--rounds R] [--associations K]
#                               [--conduit PATH] [--direct-only] [--keep]
#   --study DIR         send the *.dcm files in DIR (e.g. a study kept from an earlier run)
#                       instead of generating one with bench/generate_ct_study.py
#   --slices N          slices to generate (default 500; ignored with --study)
#   --rounds R          interleaved rounds (a),(b); medians are reported (default 3)
#   --associations K    the destination's max_associations in conduit's config (default 4)
#   --conduit PATH      conduit binary (default build/bin/conduit)
#   --direct-only       measure only (a) (no conduit needed)
#   --keep              keep the work directory (configs, logs, spools)
#   env STORESCP_PDU    max PDU storescp advertises (default 131072, conduit's default too)
#   env DELIVERY_TIMEOUT  seconds after the last ack before a missing delivery fails (120)
#
# Both paths use the same sender and the same receiver:
#   storescu -R (the files' own CT Image Storage / Explicit VR LE contexts, no transcoding), one
#   association, all N files, TCP_NODELAY=1 (DCMTK leaves Nagle on otherwise);
#   storescp +B (bit-preserving, no fsync) --fork (one process per association: conduit opens up
#   to K associations to it at once; a non-forking storescp serves one at a time).
# Conduit (b) gets a fresh spool, a listener, metrics on free ports, this rules file
#     version: 1
#     rules:
#       - name: everything
#         route: [pacs]
# and one destination {name: pacs, host: 127.0.0.1, port: <storescp>, called_ae: STORESCP,
# max_associations: K}. Both files are validated first (`conduit config check`, `conduit rules
# check`): a build whose forwarding is not there yet refuses them, and the script says so.
#
# Timing, per path: t0 = storescu starts; t_ack = storescu exits (every instance acknowledged);
# t_last = storescp's output holds all N instances *complete* (a poller checks every 20 ms that
# each file's size = its meta header + the dataset length sent, so a file still being written
# does not count). rate = N / (max(t_ack, t_last) - t0); delay = t_last - t_ack.
# Exit status: 0 all delivered (whatever the speed), 1 functional failure (storescu failed, a
# file missing after 120 s, conduit died), 2 bad usage / missing tools, 3 conduit refused the
# configuration (forwarding not available in this build; (a) is still reported).
set -Eeuo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
PYTHON=/usr/bin/python3

SLICES=500
STUDY_DIR=""
CONDUIT="$REPO_ROOT/build/bin/conduit"
KEEP=0
DIRECT_ONLY=0
ROUNDS=3
ASSOCIATIONS=4
HOST=127.0.0.1
START_TIMEOUT=20      # a listener must answer C-ECHO within this
RUN_TIMEOUT=600       # one storescu run
DELIVERY_TIMEOUT=${DELIVERY_TIMEOUT:-120}  # last ack -> every file complete at storescp
STOP_TIMEOUT=15       # SIGTERM -> exit, then SIGKILL
POLL_INTERVAL=0.02    # completeness poll of storescp's output

STORESCU_OPTS=(-R -to 10 -ta 30 -ts 60 -aet BENCHSCU)
STORESCP_PDU=${STORESCP_PDU:-131072}

usage() {
  sed -n '9,20p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

while (($#)); do
  case "$1" in
    --study) STUDY_DIR=${2:?--study needs a directory}; shift 2 ;;
    --slices) SLICES=${2:?--slices needs a value}; shift 2 ;;
    --rounds) ROUNDS=${2:?--rounds needs a value}; shift 2 ;;
    --associations) ASSOCIATIONS=${2:?--associations needs a value}; shift 2 ;;
    --conduit) CONDUIT=${2:?--conduit needs a path}; shift 2 ;;
    --direct-only) DIRECT_ONLY=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown option: $1" >&2; usage ;;
  esac
done
[[ $SLICES =~ ^[1-9][0-9]*$ ]] || { echo "--slices must be a positive integer" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "--rounds must be a positive integer" >&2; exit 2; }
[[ $ASSOCIATIONS =~ ^[1-9][0-9]*$ ]] \
  || { echo "--associations must be a positive integer" >&2; exit 2; }

for tool in storescp storescu echoscu timeout find setsid "$PYTHON"; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
if ((!DIRECT_ONLY)); then
  [[ -x $CONDUIT ]] || { echo "conduit binary not found or not executable: $CONDUIT" \
    "(build it, pass --conduit PATH, or use --direct-only)" >&2; exit 2; }
fi

export TCP_NODELAY=1

# ---------------------------------------------------------------- cleanup -----------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/conduit-forward-bench.XXXXXX")
# Process bookkeeping, cleanup traps, fail, listeners, timing/statistics helpers, load_study.
# shellcheck source-path=SCRIPTDIR source=bench_lib.sh
source "$SCRIPT_DIR/bench_lib.sh"

maxf() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }

# ---------------------------------------------------------------- study -------------------
load_study

# SOP Instance UID -> dataset length (file size minus preamble, prefix and meta group): what a
# bit-preserving receiver must hold after its own meta header once the instance is complete.
EXPECTED="$WORK/expected.tsv"
"$PYTHON" - "$ALL_LIST" "$EXPECTED" <<'PY' || fail "reading the study's meta headers"
import os, struct, sys
from pydicom.filereader import read_file_meta_info
out = []
for path in open(sys.argv[1]).read().split("\n"):
    if not path:
        continue
    with open(path, "rb") as f:
        head = f.read(144)
    if head[128:132] != b"DICM" or head[132:136] != b"\x02\x00\x00\x00":
        sys.exit(f"{path}: no Part 10 preamble with (0002,0000) first")
    meta_end = 144 + struct.unpack("<I", head[140:144])[0]
    uid = str(read_file_meta_info(path).MediaStorageSOPInstanceUID)
    out.append(f"{uid}\t{os.path.getsize(path) - meta_end}\n")
if len({l.split()[0] for l in out}) != len(out):
    sys.exit("the study has repeated SOP Instance UIDs")
open(sys.argv[2], "w").writelines(out)
PY

# The completeness poller: prints the wall-clock time (date +%s.%N's clock) at which OUT first
# held every expected instance complete; exit 1 after DEADLINE (epoch seconds) if it never does.
POLLER="$WORK/poll_complete.py"
cat >"$POLLER" <<'PY'
import os, struct, sys, time
out_dir, expected_path = sys.argv[1], sys.argv[2]
deadline, interval = float(sys.argv[3]), float(sys.argv[4])
expected = {}
for line in open(expected_path):
    uid, length = line.split()
    expected[uid] = int(length)
done = set()           # file names known complete
meta_len = {}          # file name -> bytes before the dataset (its own meta header)
def complete(name):
    path = os.path.join(out_dir, name)
    try:
        size = os.stat(path).st_size
        if name not in meta_len:
            if size < 144:
                return False
            with open(path, "rb") as f:
                head = f.read(144)
            meta_len[name] = 144 + struct.unpack("<I", head[140:144])[0]
    except OSError:
        return False
    # storescp names files <modality>.<SOP Instance UID>
    uid = name.split(".", 1)[1] if "." in name else name
    want = expected.get(uid)
    return want is not None and size == meta_len[name] + want
while True:
    try:
        names = os.listdir(out_dir)
    except OSError:
        names = []
    for name in names:
        if name not in done and complete(name):
            done.add(name)
    if len(done) >= len(expected):
        print(f"{time.time():.6f}")
        sys.exit(0)
    if time.time() > deadline:
        print(f"{len(done)} of {len(expected)} complete", file=sys.stderr)
        sys.exit(1)
    time.sleep(interval)
PY

# start_storescp DIR: a forking bit-preserving storescp; sets SCP_PID SCP_PORT SCP_OUT
start_storescp() {
  local dir=$1
  SCP_OUT="$dir/out"
  mkdir -p "$SCP_OUT"
  SCP_PORT=$(free_port)
  start_listener STORESCP "$SCP_PORT" "$dir/storescp.log" \
    storescp +B --fork -pdu "$STORESCP_PDU" -aet STORESCP -od "$SCP_OUT" "$SCP_PORT"
  SCP_PID=$LISTENER_PID
}

# run_path DIR AET PORT [VIA_LOG]: poller + one storescu association with all N files, into
# SCP_OUT; VIA_LOG is the router's log, shown if delivery times out. Sets T0 T_ACK T_LAST.
run_path() {
  local dir=$1 aet=$2 port=$3 via_log=${4:-} send_pid poll_pid rc=0 deadline
  local -a files
  mapfile -t files <"$ALL_LIST"
  deadline=$(awk -v t="$(now)" -v r="$RUN_TIMEOUT" -v d="$DELIVERY_TIMEOUT" \
    'BEGIN { printf "%.0f", t + r + d }')
  "$PYTHON" "$POLLER" "$SCP_OUT" "$EXPECTED" "$deadline" "$POLL_INTERVAL" \
    >"$dir/t_last" 2>"$dir/poller.log" &
  poll_pid=$!
  BG_PIDS+=("$poll_pid")
  T0=$(now)
  timeout "$RUN_TIMEOUT" storescu "${STORESCU_OPTS[@]}" -aec "$aet" "$HOST" "$port" \
    "${files[@]}" >"$dir/storescu.log" 2>&1 &
  send_pid=$!
  BG_PIDS+=("$send_pid")
  wait "$send_pid" || rc=$?
  T_ACK=$(now)
  forget_pid "$send_pid"
  if ((rc != 0)); then
    tail -n 20 "$dir/storescu.log" >&2
    fail "storescu -> $aet exited with status $rc"
  fi
  # The poller's own deadline was for the whole run; bound the wait after the last ack too.
  local i
  for ((i = 0; i < DELIVERY_TIMEOUT * 10; i++)); do
    kill -0 "$poll_pid" 2>/dev/null || break
    sleep 0.1
  done
  rc=0
  if kill -0 "$poll_pid" 2>/dev/null; then
    stop_pid "$poll_pid"; forget_pid "$poll_pid"
    local hint=""
    if [[ -n $via_log ]]; then
      echo "--- last lines of $via_log" >&2; tail -n 15 "$via_log" >&2 || true
      hint="; conduit acknowledged all $N: does this build forward yet?"
      hint+=" (DELIVERY_TIMEOUT=SECONDS waits less)"
    fi
    fail "not all $N instances complete at storescp ${DELIVERY_TIMEOUT}s after the last ack" \
      "($(find "$SCP_OUT" -type f | wc -l) files there)$hint"
  fi
  wait "$poll_pid" || rc=$?
  forget_pid "$poll_pid"
  ((rc == 0)) || fail "poller: $(cat "$dir/poller.log")"
  T_LAST=$(cat "$dir/t_last")
}

# phase_direct ROUND: (a); sets PHASE_SECS PHASE_DELAY
phase_direct() {
  local dir="$WORK/r$1-direct"
  mkdir -p "$dir"
  start_storescp "$dir"
  run_path "$dir" STORESCP "$SCP_PORT"
  PHASE_SECS=$(elapsed "$T0" "$(maxf "$T_ACK" "$T_LAST")")
  PHASE_DELAY=$(elapsed "$T_ACK" "$T_LAST")
  stop_pid "$SCP_PID"; forget_pid "$SCP_PID"
  rm -rf "$SCP_OUT"
  settle
}

# write_conduit_config DIR SCP_PORT [ROUTED]: sets C_CFG C_RULES C_PORT C_MPORT C_SPOOL. With
# ROUTED=0 the config has no rules file: conduit only spools (the ingest ceiling, phase (c)).
write_conduit_config() {
  local dir=$1 scp_port=$2 routed=${3:-1}
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
    route: [pacs]
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
YAML
  if ((routed)); then
    cat >>"$C_CFG" <<YAML
rules:
  file: $C_RULES
YAML
  fi
  cat >>"$C_CFG" <<YAML
destinations:
  - name: pacs
    host: $HOST
    port: $scp_port
    called_ae: STORESCP
    max_associations: $ASSOCIATIONS
YAML
}

# phase_conduit ROUND: (b); sets PHASE_SECS PHASE_DELAY
phase_conduit() {
  local dir="$WORK/r$1-conduit" c_pid
  mkdir -p "$dir"
  start_storescp "$dir"
  write_conduit_config "$dir" "$SCP_PORT"
  start_listener CONDUIT "$C_PORT" "$dir/conduit.log" "$CONDUIT" serve --config "$C_CFG"
  c_pid=$LISTENER_PID
  run_path "$dir" CONDUIT "$C_PORT" "$dir/conduit.log"
  PHASE_SECS=$(elapsed "$T0" "$(maxf "$T_ACK" "$T_LAST")")
  PHASE_DELAY=$(elapsed "$T_ACK" "$T_LAST")
  kill -0 "$c_pid" 2>/dev/null \
    || { tail -n 30 "$dir/conduit.log" >&2; fail "conduit exited during the run"; }
  stop_pid "$c_pid"; forget_pid "$c_pid"
  stop_pid "$SCP_PID"; forget_pid "$SCP_PID"
  rm -rf "$SCP_OUT"
  ((KEEP)) || rm -rf "$C_SPOOL"
  settle
}

# phase_ingest ROUND: (c) storescu -> conduit with no rules: every instance is only made durable
# in the spool. What the disk allows any durable router on this box; sets PHASE_SECS.
phase_ingest() {
  local dir="$WORK/r$1-ingest" c_pid rc=0
  local -a files
  mapfile -t files <"$ALL_LIST"
  mkdir -p "$dir"
  write_conduit_config "$dir" 104 0
  start_listener CONDUIT "$C_PORT" "$dir/conduit.log" "$CONDUIT" serve --config "$C_CFG"
  c_pid=$LISTENER_PID
  T0=$(now)
  timeout "$RUN_TIMEOUT" storescu "${STORESCU_OPTS[@]}" -aec CONDUIT "$HOST" "$C_PORT" \
    "${files[@]}" >"$dir/storescu.log" 2>&1 || rc=$?
  T_ACK=$(now)
  ((rc == 0)) || { tail -n 20 "$dir/storescu.log" >&2; fail "storescu -> conduit (ingest only)"; }
  PHASE_SECS=$(elapsed "$T0" "$T_ACK")
  stop_pid "$c_pid"; forget_pid "$c_pid"
  ((KEEP)) || rm -rf "$C_SPOOL"
  settle
}

# ---------------------------------------------------------------- rounds ------------------
declare -a T_A=() T_B=() T_C=() D_A=() D_B=()
settle
for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r/$ROUNDS: (a) storescu -> storescp, $N instances ..." >&2
  phase_direct "$r"; T_A+=("$PHASE_SECS"); D_A+=("$PHASE_DELAY")
  if ((r == 1 && !DIRECT_ONLY)); then
    # Fail early and clearly if this conduit cannot take the forwarding config.
    mkdir -p "$WORK/precheck"
    write_conduit_config "$WORK/precheck" 104
    if conduit_refuses >&2; then
      echo "conduit ($CONDUIT) refuses the configuration or rules above: this build cannot" \
        "forward to a DIMSE destination yet (or the keys changed; see $C_CFG with --keep)." >&2
      echo "(a) direct storescu -> storescp: $(awk -v n="$N" -v t="${T_A[0]}" \
        'BEGIN { printf "%.1f", n / t }') inst/s (round 1); (b) not measured" >&2
      exit 3
    fi
  fi
  ((DIRECT_ONLY)) && continue
  echo "round $r/$ROUNDS: (b) storescu -> conduit -> storescp ($ASSOCIATIONS assoc) ..." >&2
  phase_conduit "$r"; T_B+=("$PHASE_SECS"); D_B+=("$PHASE_DELAY")
  echo "round $r/$ROUNDS: (c) storescu -> conduit, spool only (no routes) ..." >&2
  phase_ingest "$r"; T_C+=("$PHASE_SECS")
done

# ---------------------------------------------------------------- report ------------------
row() { printf '%-44s %10s  %-8s %-14s %s\n' "$@"; }

A_RATES=$(rates "$N" "${T_A[@]}")
A_RATE=$(median 3 <<<"$A_RATES")
MB=$(awk -v b="$STUDY_BYTES" 'BEGIN { printf "%.0f", b / 1048576 }')
echo
echo "Forwarding benchmark: $N instances ($MB MB), $ROUNDS interleaved round(s), $(nproc) cores."
echo "Medians over rounds; last column min..max. storescu ${STORESCU_OPTS[*]}, TCP_NODELAY=1;"
echo "receiver storescp +B --fork -pdu $STORESCP_PDU (no fsync);" \
  "delivery = file complete at storescp."
row "metric" "value" "target" "verdict" "spread"
row "--------------------------------------------" "----------" "--------" "--------------" "------"
row "(a) direct storescu -> storescp (inst/s)" "$A_RATE" "reference" "" "$(spread <<<"$A_RATES")"
row "  (a) last ack -> last file complete (s)" \
  "$(printf '%s\n' "${D_A[@]}" | sort -g | median 3)" "" "" \
  "$(printf '%s\n' "${D_A[@]}" | sort -g | spread)"
if ((DIRECT_ONLY)); then
  echo "functional: storescu exited 0 and all $N instances arrived complete in every round"
  exit 0
fi
B_RATES=$(rates "$N" "${T_B[@]}")
B_RATE=$(median 3 <<<"$B_RATES")
R=$(ratio "$B_RATE" "$A_RATE")
R_SPREAD=$(for ((i = 0; i < ROUNDS; i++)); do ratio "${T_A[i]}" "${T_B[i]}"; echo; done \
  | sort -g | spread)
DELAY=$(printf '%s\n' "${D_B[@]}" | sort -g | median 3)
DELAY_SPREAD=$(printf '%s\n' "${D_B[@]}" | sort -g | spread)
if ge "$R" 0.8; then VR=PASS; else VR="BELOW TARGET"; fi
if lt "$DELAY" 1.0; then VD=PASS; else VD="BELOW TARGET"; fi
row "(b) storescu -> conduit -> storescp (inst/s)" "$B_RATE" "" "" "$(spread <<<"$B_RATES")"
row "  ratio (b) / (a)" "$R" ">= 0.8" "$VR" "$R_SPREAD within rounds"
row "  (b) last ack -> last delivery (s)" "$DELAY" "< 1.0" "$VD" "$DELAY_SPREAD"
C_RATES=$(rates "$N" "${T_C[@]}")
C_RATE=$(median 3 <<<"$C_RATES")
row "(c) storescu -> conduit, spool only (inst/s)" "$C_RATE" "" "" "$(spread <<<"$C_RATES")"
row "  ratio (c) / (a): the durable-ingest ceiling" "$(ratio "$C_RATE" "$A_RATE")" "" "" ""
row "  ratio (b) / (c): forwarding's cost to ingest" "$(ratio "$B_RATE" "$C_RATE")" "" "" ""
echo "destination max_associations: $ASSOCIATIONS"
echo "functional: every storescu exited 0 and all $N instances arrived complete in every run"
exit 0
