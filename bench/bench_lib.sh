# shellcheck shell=bash
# bench/bench_lib.sh: what the bench/*_bench.sh scripts share. Sourced, not
# run: process bookkeeping and cleanup, listener start-up, timing and statistics helpers, and
# loading the study. Each script keeps its own options, phases and report.
#
# The caller must set, before sourcing (sourcing fails at once if one is unset or empty):
#   WORK           the run's work directory (mktemp -d); removed on exit unless KEEP=1
#   KEEP           1 keeps WORK on exit (--keep), 0 removes it
#   STOP_TIMEOUT   seconds stop_pid waits after SIGTERM before it sends SIGKILL
#   START_TIMEOUT  seconds wait_for_echo waits for a listener to answer C-ECHO
#   HOST           the loopback address every listener binds and every sender connects to
#   PYTHON         the python3 that runs free_port and generate_ct_study.py
# and, before calling load_study:
#   SCRIPT_DIR     bench/ (holds generate_ct_study.py)
#   STUDY_DIR      a directory of *.dcm files to send, or "" to generate a study in $WORK/study
#   SLICES         slices to generate when STUDY_DIR is ""
# and the script should run under `set -Eeuo pipefail`, as both do.
#
# Sourcing declares BG_PIDS and GROUP_LEADER and installs the EXIT/INT/TERM traps (cleanup):
# every background process the script starts must be added to BG_PIDS (start_listener does
# that), so that any exit, including Ctrl-C and failures, stops it and removes WORK.

: "${WORK:?set WORK before sourcing bench_lib.sh}"
: "${KEEP:?set KEEP before sourcing bench_lib.sh}"
: "${STOP_TIMEOUT:?set STOP_TIMEOUT before sourcing bench_lib.sh}"
: "${START_TIMEOUT:?set START_TIMEOUT before sourcing bench_lib.sh}"
: "${HOST:?set HOST before sourcing bench_lib.sh}"
: "${PYTHON:?set PYTHON before sourcing bench_lib.sh}"

# conduit_refuses: true (and conduit's messages on stdout) if "$CONDUIT" refuses the
# configuration "$C_CFG" or the rules "$C_RULES" (both set by the caller before calling).
conduit_refuses() {
  local out
  if ! out=$("$CONDUIT" config check "$C_CFG" 2>&1); then echo "$out"; return 0; fi
  if ! out=$("$CONDUIT" rules check --config "$C_CFG" "$C_RULES" 2>&1); then
    echo "$out"; return 0
  fi
  return 1
}

# ---------------------------------------------------------------- cleanup -----------------
declare -a BG_PIDS=()        # every background process this script started
declare -A GROUP_LEADER=()   # receivers started with setsid: stop their whole process group

stop_pid() {  # stop_pid PID: SIGTERM (its group if it leads one), bounded wait, SIGKILL; reaps
  local pid=$1 target=$1 i
  # A receiver that forks helpers (storescp --fork does) is stopped as a group, so no child
  # outlives it. setsid made the receiver a group leader (pgid == pid) before it exec'd.
  [[ -n ${GROUP_LEADER[$pid]:-} ]] && target="-$pid"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "$target" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "warning: pid $pid ignored SIGTERM for ${STOP_TIMEOUT}s; killing" >&2
      kill -KILL -- "$target" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
  # Stragglers of the group, e.g. storescp --fork children that outlive their parent (the
  # leader is gone, the pgid is still unique to it).
  if [[ $target == -* ]]; then kill -KILL -- "$target" 2>/dev/null || true; fi
  unset "GROUP_LEADER[$pid]"
}

forget_pid() {  # forget_pid PID: remove a pid that has been stopped/reaped from BG_PIDS
  local keep=() p
  for p in "${BG_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  BG_PIDS=("${keep[@]}")
}

# shellcheck disable=SC2317  # invoked via trap
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${BG_PIDS[@]}"; do stop_pid "$pid"; done
  if ((KEEP)); then
    echo "kept work directory: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "FAILED: $*" >&2
  ((KEEP)) || echo "(rerun with --keep to inspect logs and spools under the work directory)" >&2
  exit 1
}

# check_group_leader PID: setsid exec's in place only when its caller is not a group leader
# (always true for a background job of a non-interactive script); verify rather than assume,
# since a forked setsid would leave us tracking the wrong pid.
check_group_leader() {
  local pgid
  pgid=$(ps -o pgid= -p "$1" 2>/dev/null | tr -d ' ')
  [[ $pgid == "$1" ]] || fail "pid $1 does not lead its own process group (pgid '${pgid}')"
}

# ---------------------------------------------------------------- listeners ---------------
free_port() {  # a currently free loopback TCP port (the kernel picks it)
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_echo() {  # wait_for_echo AET PORT PID LOG: until C-ECHO succeeds, or fail
  local aet=$1 port=$2 pid=$3 log=$4 deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "--- last lines of $log" >&2; tail -n 30 "$log" >&2 || true
      fail "$aet (pid $pid) exited before accepting associations"
    fi
    if timeout 5 echoscu -to 2 -ta 2 -ts 2 -aet BENCHSCU -aec "$aet" "$HOST" "$port" \
         >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  echo "--- last lines of $log" >&2; tail -n 30 "$log" >&2 || true
  fail "$aet on $HOST:$port did not answer C-ECHO within ${START_TIMEOUT}s"
}

# start_listener AET PORT LOG COMMAND [ARGS...]: start a receiver (storescp, conduit serve) in
# the background as the leader of its own process group, output to LOG, stdin from /dev/null;
# track it, wait until it answers C-ECHO as AET on PORT, and set LISTENER_PID.
start_listener() {
  local aet=$1 port=$2 log=$3
  shift 3
  # setsid: a background child of a non-interactive shell is not a group leader, so setsid
  # exec's directly (no fork) and $! is the receiver itself, leading its own process group.
  setsid "$@" >"$log" 2>&1 </dev/null &
  LISTENER_PID=$!
  BG_PIDS+=("$LISTENER_PID")
  GROUP_LEADER[$LISTENER_PID]=1
  wait_for_echo "$aet" "$port" "$LISTENER_PID" "$log"
  check_group_leader "$LISTENER_PID"
}

# ---------------------------------------------------------------- timing ------------------
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# Every phase starts from a clean state for writes (sync after the previous phase's output is
# deleted), so one receiver's dirty-page writeback is never billed to the next one.
settle() { timeout 60 sync || true; }

# ---------------------------------------------------------------- statistics --------------
# rates N SECS...: instance rates, one per line, ascending
rates() {
  local n=$1; shift
  printf '%s\n' "$@" | awk -v n="$n" '{ printf "%.1f\n", n / $1 }' | sort -g
}
# median DECIMALS: of sorted numbers on stdin; an even count prints the mean of the middle two
# with DECIMALS places, an odd count the middle value as it is.
median() {
  awk -v fmt="%.${1}f\n" '{ v[NR] = $1 }
       END { if (NR % 2) print v[(NR + 1) / 2]; else printf fmt, (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
spread() { awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s..%s", lo, hi }'; }

# ---------------------------------------------------------------- study -------------------
# load_study: use STUDY_DIR, or generate a SLICES-slice study in $WORK/study; sets STUDY_DIR
# (absolute), ALL_LIST (the *.dcm files, one a line, sorted), N (their count) and STUDY_BYTES.
load_study() {
  if [[ -n $STUDY_DIR ]]; then
    [[ -d $STUDY_DIR ]] || fail "--study $STUDY_DIR is not a directory"
    STUDY_DIR=$(cd "$STUDY_DIR" && pwd)
  else
    STUDY_DIR="$WORK/study"
    echo "generating $SLICES-slice CT study in $STUDY_DIR ..." >&2
    "$PYTHON" "$SCRIPT_DIR/generate_ct_study.py" "$STUDY_DIR" --slices "$SLICES" >&2 \
      || fail "study generation"
  fi
  ALL_LIST="$WORK/all.list"
  find "$STUDY_DIR" -maxdepth 1 -type f -name '*.dcm' | LC_ALL=C sort >"$ALL_LIST"
  N=$(wc -l <"$ALL_LIST")
  ((N > 0)) || fail "no *.dcm files in $STUDY_DIR"
  # shellcheck disable=SC2034  # used by the callers
  STUDY_BYTES=$(du -sb "$STUDY_DIR" | cut -f1)
  # Warm the page cache so the first run does not pay for reading the study from disk.
  xargs -d '\n' -a "$ALL_LIST" cat >/dev/null
}
