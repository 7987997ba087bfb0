#!/usr/bin/env bash
# End-to-end ingest benchmark: DCMTK storescu -> {DCMTK storescp +B, Conduit}, in one run, on
# loopback, printing ratios (absolute numbers on a shared 2-core box are noise; ratios measured
# back to back are not). See bench/README.md.
#
# usage: bench/ingest_bench.sh [--slices N] [--study DIR] [--conduit PATH] [--rounds R]
#                              [--keep] [--storescp-only]
#   --slices N       slices to generate (default 500; ignored with --study)
#   --study DIR      send the *.dcm files in DIR instead of generating a study
#   --conduit PATH   conduit binary (default build/bin/conduit)
#   --rounds R       interleaved rounds; medians are reported (default 3)
#   --keep           keep the work directory (logs, configs, conduit spools)
#   --storescp-only  measure only the DCMTK reference (no conduit needed)
#   env STORESCP_PDU max PDU storescp advertises (default 131072, same as conduit's default)
#
# Each round runs three phases, each on fresh processes, a fresh output directory and a free
# loopback port, with a `sync` between phases:
#   1. storescp +B (bit-preserving, no fsync), one storescu association, all N files.
#   2. conduit serve, one storescu association, all N files.
#   3. conduit serve again, with an empty spool (re-sent SOP Instance UIDs cannot be
#      deduplicated or overwritten, and VmHWM covers only this phase): 8 storescu processes in
#      parallel, files dealt round-robin; peak RSS = VmHWM of that conduit process.
# Functional checks: every storescu exits 0 and the receiver holds exactly as many files as were
# sent (storescp: files in its output dir; conduit: *.dcm under the spool directory).
# Exit status: 0 when everything worked (whatever the speed), 1 on a functional failure,
# 2 on bad usage / missing tools. All processes and the work directory are cleaned up on any exit.
set -Eeuo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
PYTHON=/usr/bin/python3

SLICES=500
STUDY_DIR=""
CONDUIT="$REPO_ROOT/build/bin/conduit"
KEEP=0
STORESCP_ONLY=0
ROUNDS=3
PARALLEL=8
HOST=127.0.0.1
# Bounds on every wait (seconds).
START_TIMEOUT=20     # listener accepting (echoscu succeeds)
RUN_TIMEOUT=600      # one storescu run (500 x 512 KiB normally takes about a second)
STOP_TIMEOUT=15      # SIGTERM -> exit, then SIGKILL

# storescu options, identical for every run against every peer:
#   -R      propose only the presentation contexts the files need (CT Image Storage with the
#           files' own Explicit VR Little Endian, plus DCMTK's default uncompressed fallbacks);
#           no transcoding on either side, nothing exotic either peer could refuse.
#   -to/-ta/-ts  bounded connect / ACSE / socket timeouts.
#   default max receive PDU (16 KiB: storescu only receives small C-STORE-RSPs); the size of
#   the PDUs it *sends* is capped by what the receiver advertises (see STORESCP_PDU).
# plus TCP_NODELAY=1 in the environment: DCMTK leaves Nagle on otherwise and every C-STORE
# then stalls ~40 ms on the delayed ACK.
STORESCU_OPTS=(-R -to 10 -ta 30 -ts 60 -aet BENCHSCU)
# storescp's advertised max PDU. DCMTK's default is 16 KiB; Conduit advertises 128 KiB
# (listener.max_pdu_bytes default), so give storescp the same (131072 is DCMTK's maximum) to
# compare the receivers rather than the PDU size.
STORESCP_PDU=${STORESCP_PDU:-131072}

usage() {
  sed -n '6,14p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

while (($#)); do
  case "$1" in
    --slices) SLICES=${2:?--slices needs a value}; shift 2 ;;
    --study) STUDY_DIR=${2:?--study needs a directory}; shift 2 ;;
    --conduit) CONDUIT=${2:?--conduit needs a path}; shift 2 ;;
    --rounds) ROUNDS=${2:?--rounds needs a value}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --storescp-only) STORESCP_ONLY=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown option: $1" >&2; usage ;;
  esac
done
[[ $SLICES =~ ^[1-9][0-9]*$ ]] || { echo "--slices must be a positive integer" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "--rounds must be a positive integer" >&2; exit 2; }

for tool in storescp storescu echoscu timeout find setsid "$PYTHON"; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
if ((!STORESCP_ONLY)); then
  [[ -x $CONDUIT ]] || { echo "conduit binary not found or not executable: $CONDUIT" \
    "(build it, pass --conduit PATH, or use --storescp-only)" >&2; exit 2; }
fi

export TCP_NODELAY=1

# ---------------------------------------------------------------- cleanup -----------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/conduit-ingest-bench.XXXXXX")
# Process bookkeeping, cleanup traps, fail, listeners, timing/statistics helpers, load_study.
# shellcheck source-path=SCRIPTDIR source=bench_lib.sh
source "$SCRIPT_DIR/bench_lib.sh"

# ---------------------------------------------------------------- helpers -----------------
count_files() {  # count_files DIR [find-args...]: number of regular files
  local dir=$1; shift
  find "$dir" -type f "$@" 2>/dev/null | wc -l
}

vm_hwm_kib() {  # peak resident set of a live process, KiB
  awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

# start_send AET PORT LOG FILELIST: start one storescu association (all files in FILELIST) in
# the background; sets SEND_PID. The background job is `timeout` itself (a simple command is
# exec'd, not wrapped in a subshell), and timeout forwards SIGTERM to storescu, so cleanup never
# leaves a storescu behind.
start_send() {
  local aet=$1 port=$2 log=$3 list=$4
  local -a files
  mapfile -t files <"$list"
  timeout "$RUN_TIMEOUT" storescu "${STORESCU_OPTS[@]}" -aec "$aet" "$HOST" "$port" \
    "${files[@]}" >"$log" 2>&1 &
  SEND_PID=$!
  BG_PIDS+=("$SEND_PID")
}

# send_one AET PORT LOG FILELIST: one association, waited for here; returns storescu's status.
# (Waiting with `wait` rather than in the foreground lets INT/TERM traps run at once.)
send_one() {
  local rc=0
  start_send "$@"
  wait "$SEND_PID" || rc=$?
  forget_pid "$SEND_PID"
  return "$rc"
}

# ---------------------------------------------------------------- study -------------------
load_study
if [[ $STUDY_DIR != "$WORK/study" && $N -ne $SLICES ]]; then
  echo "note: --study has $N files; sending all of them" >&2
fi

# ---------------------------------------------------------------- phases ------------------
# Every phase starts fresh processes and ends with settle (bench_lib.sh).

# phase_storescp ROUND: storescp +B, one association; sets PHASE_SECS
phase_storescp() {
  local dir="$WORK/r$1-storescp" port pid t0 t1 got
  mkdir -p "$dir/out"
  port=$(free_port)
  start_listener STORESCP "$port" "$dir/storescp.log" \
    storescp +B -pdu "$STORESCP_PDU" -aet STORESCP -od "$dir/out" "$port"
  pid=$LISTENER_PID
  t0=$(now)
  send_one STORESCP "$port" "$dir/storescu.log" "$ALL_LIST" \
    || { tail -n 20 "$dir/storescu.log" >&2; fail "storescu -> storescp exited non-zero"; }
  t1=$(now)
  PHASE_SECS=$(elapsed "$t0" "$t1")
  stop_pid "$pid"; forget_pid "$pid"
  got=$(count_files "$dir/out")
  ((got == N)) || fail "storescp stored $got files, $N were sent"
  rm -rf "$dir/out"   # 250 MB we no longer need, even with --keep
  settle
}

# start_conduit DIR: fresh spool + config + ports; sets C_PID C_PORT C_SPOOL C_LOG
start_conduit() {
  local dir=$1 mport
  mkdir -p "$dir/spool"
  C_PORT=$(free_port)
  mport=$(free_port)
  while [[ $mport == "$C_PORT" ]]; do mport=$(free_port); done
  C_SPOOL="$dir/spool"
  C_LOG="$dir/conduit.log"
  cat >"$dir/conduit.yaml" <<YAML
listener:
  bind_address: $HOST
  port: $C_PORT
  ae_title: CONDUIT
spool:
  directory: $C_SPOOL
metrics:
  listen: $HOST:$mport
YAML
  start_listener CONDUIT "$C_PORT" "$C_LOG" "$CONDUIT" serve --config "$dir/conduit.yaml"
  C_PID=$LISTENER_PID
}

# finish_conduit WHAT: check it survived, read VmHWM (sets PHASE_HWM), count, stop, clean up
finish_conduit() {
  local what=$1 got
  kill -0 "$C_PID" 2>/dev/null \
    || { tail -n 30 "$C_LOG" >&2; fail "conduit exited during the $what run"; }
  PHASE_HWM=$(vm_hwm_kib "$C_PID")   # read before stopping: covers the whole phase
  got=$(count_files "$C_SPOOL" -name '*.dcm')
  stop_pid "$C_PID"; forget_pid "$C_PID"
  ((got == N)) || fail "conduit ($what) spooled $got *.dcm files under $C_SPOOL, $N were sent"
  ((KEEP)) || rm -rf "$C_SPOOL"
  settle
}

# phase_conduit_one ROUND: one association; sets PHASE_SECS PHASE_HWM
phase_conduit_one() {
  local dir="$WORK/r$1-conduit-1assoc" t0 t1
  start_conduit "$dir"
  t0=$(now)
  send_one CONDUIT "$C_PORT" "$dir/storescu.log" "$ALL_LIST" \
    || { tail -n 20 "$dir/storescu.log" >&2; fail "storescu -> conduit exited non-zero"; }
  t1=$(now)
  PHASE_SECS=$(elapsed "$t0" "$t1")
  finish_conduit "1-association"
}

# phase_conduit_parallel ROUND: PARALLEL associations at once; sets PHASE_SECS PHASE_HWM
phase_conduit_parallel() {
  local dir="$WORK/r$1-conduit-${PARALLEL}assoc" t0 t1 g pid failed=0
  local -a pids=()
  start_conduit "$dir"
  t0=$(now)
  for ((g = 0; g < PARALLEL; g++)); do
    [[ -s $WORK/group$g.list ]] || continue
    start_send CONDUIT "$C_PORT" "$dir/storescu-$g.log" "$WORK/group$g.list"
    pids+=("$SEND_PID")
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || failed=$((failed + 1))
    forget_pid "$pid"
  done
  t1=$(now)
  PHASE_SECS=$(elapsed "$t0" "$t1")
  if ((failed)); then
    for ((g = 0; g < PARALLEL; g++)); do
      echo "--- storescu group $g" >&2; tail -n 5 "$dir/storescu-$g.log" >&2 || true
    done
    fail "$failed of ${#pids[@]} parallel storescu runs exited non-zero"
  fi
  finish_conduit "$PARALLEL-association"
}

# Files dealt round-robin into PARALLEL groups (one storescu each).
for ((g = 0; g < PARALLEL; g++)); do
  awk -v g="$g" -v p="$PARALLEL" '(NR - 1) % p == g' "$ALL_LIST" >"$WORK/group$g.list"
done

# ---------------------------------------------------------------- rounds ------------------
# Interleaved (storescp, conduit 1 assoc, conduit 8 assoc) x ROUNDS, so drift in the machine's
# load hits every configuration alike; medians are reported, with min..max to show the noise.
declare -a T_SCP=() T_C1=() T_CP=() HWM_C1=() HWM_CP=()
settle
for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r/$ROUNDS: storescp +B, 1 association, $N instances ..." >&2
  phase_storescp "$r"; T_SCP+=("$PHASE_SECS")
  ((STORESCP_ONLY)) && continue
  echo "round $r/$ROUNDS: conduit, 1 association ..." >&2
  phase_conduit_one "$r"; T_C1+=("$PHASE_SECS"); HWM_C1+=("$PHASE_HWM")
  echo "round $r/$ROUNDS: conduit, $PARALLEL associations in parallel ..." >&2
  phase_conduit_parallel "$r"; T_CP+=("$PHASE_SECS"); HWM_CP+=("$PHASE_HWM")
done

# ---------------------------------------------------------------- report ------------------
max_of() { printf '%s\n' "$@" | sort -g | tail -n 1; }
row() { printf '%-40s %10s  %-9s %-29s %s\n' "$@"; }

SCP_RATES=$(rates "$N" "${T_SCP[@]}")
SCP_RATE=$(median 2 <<<"$SCP_RATES")
MB=$(awk -v b="$STUDY_BYTES" 'BEGIN { printf "%.0f", b / 1048576 }')

echo
echo "Ingest benchmark: $N instances ($MB MB), $ROUNDS interleaved round(s), $(nproc) cores."
echo "Values are medians over rounds; last column: min..max over rounds."
echo "storescu ${STORESCU_OPTS[*]}, TCP_NODELAY=1; reference: storescp +B -pdu $STORESCP_PDU (no fsync)"
row "metric" "value" "target" "verdict" "spread"
row "----------------------------------------" "----------" "---------" "-----------------------------" "------"
row "storescp +B, 1 assoc (inst/s)" "$SCP_RATE" "reference" "" "$(spread <<<"$SCP_RATES")"
if ((STORESCP_ONLY)); then
  echo "functional: storescu exited 0 and received files = sent ($N) in every round"
  exit 0
fi

C1_RATES=$(rates "$N" "${T_C1[@]}")
CP_RATES=$(rates "$N" "${T_CP[@]}")
C1_RATE=$(median 2 <<<"$C1_RATES")
CP_RATE=$(median 2 <<<"$CP_RATES")
R1=$(ratio "$C1_RATE" "$SCP_RATE")
RP=$(ratio "$CP_RATE" "$SCP_RATE")
# Ratios within each round (back to back) show how much of a verdict is noise.
R1_SPREAD=$(for ((i = 0; i < ROUNDS; i++)); do ratio "${T_SCP[i]}" "${T_C1[i]}"; echo; done \
  | sort -g | spread)
RP_SPREAD=$(for ((i = 0; i < ROUNDS; i++)); do ratio "${T_SCP[i]}" "${T_CP[i]}"; echo; done \
  | sort -g | spread)
HWM_MB=$(awk -v k="$(max_of "${HWM_CP[@]}")" 'BEGIN { printf "%.1f", k / 1024 }')
HWM1_MB=$(awk -v k="$(max_of "${HWM_C1[@]}")" 'BEGIN { printf "%.1f", k / 1024 }')

if ge "$R1" 1.0; then V1=PASS
elif lt "$R1" 0.8; then V1="BELOW TARGET (defect: < 0.8)"
else V1="BELOW TARGET"; fi
if ge "$RP" 1.5; then VP=PASS; else VP="BELOW TARGET"; fi
if lt "$HWM_MB" 100; then VM=PASS; else VM="BELOW TARGET"; fi

row "conduit, 1 assoc (inst/s)" "$C1_RATE" "" "" "$(spread <<<"$C1_RATES")"
row "  ratio conduit / storescp" "$R1" ">= 1.0" "$V1" "$R1_SPREAD within rounds"
row "conduit, $PARALLEL assoc aggregate (inst/s)" "$CP_RATE" "" "" "$(spread <<<"$CP_RATES")"
row "  ratio vs storescp 1 assoc" "$RP" ">= 1.5" "$VP" "$RP_SPREAD within rounds"
row "conduit peak RSS, $PARALLEL assoc (MB)" "$HWM_MB" "< 100" "$VM" "max VmHWM over rounds"
row "  (conduit peak RSS, 1 assoc, MB)" "$HWM1_MB" "" "" ""
# The floor: one writer making new files durable the spool's way, no network, no DICOM. A
# sender that waits for each response cannot be acknowledged durably faster than this.
FLOOR_BIN="$(dirname "$CONDUIT")/conduit_durable_write_floor"
if [[ -x $FLOOR_BIN ]]; then
  FLOOR_RATE=$("$FLOOR_BIN" "$WORK/floor" "$N" "$((STUDY_BYTES / N))")
  row "durable-write floor, 1 writer (files/s)" "$FLOOR_RATE" "" "no network; same disk" ""
  row "  floor / storescp" "$(ratio "$FLOOR_RATE" "$SCP_RATE")" "" "best any durable 1-assoc ratio" ""
  # The same with $PARALLEL writers at once: what the disk gives concurrent associations.
  per_writer=$((N / PARALLEL))
  t0=$(now)
  floor_pids=()
  for ((g = 0; g < PARALLEL; g++)); do
    "$FLOOR_BIN" "$WORK/floor-$g" "$per_writer" "$((STUDY_BYTES / N))" >/dev/null &
    floor_pids+=($!)
  done
  wait "${floor_pids[@]}"
  t1=$(now)
  PFLOOR_RATE=$(awk -v n="$((per_writer * PARALLEL))" -v a="$t0" -v b="$t1" \
    'BEGIN { printf "%.1f", n / (b - a) }')
  row "durable-write floor, $PARALLEL writers (files/s)" "$PFLOOR_RATE" "" "no network; same disk" ""
  row "  floor / storescp" "$(ratio "$PFLOOR_RATE" "$SCP_RATE")" "" "best any durable ${PARALLEL}-assoc ratio" ""
fi
echo "functional: every storescu exited 0 and received files = sent ($N) in every run"
exit 0
