#!/usr/bin/env bash
# One or more reproduction runs under Docker Compose, ending with a summary and a verdict.
# `make repro` / `make selftest` call this; it can also be run directly:
#
#   scripts/repro.sh --image tykio/tyk-gateway:v2.9.4 --label 2.9.4
#   scripts/repro.sh --stub v2.9.4 --label selftest-v2.9.4 --expect hang
#
# Each run gets its own compose project, is taken down (`down -v`) afterwards unless KEEP=1, and
# every step runs under `timeout`, so the script always returns. Exit status comes from the
# summaries' verdicts, never from compose: 0 all pass (or all as --expect says), 1 otherwise
# (hang, infra_error, interrupted, or no summary at all), 2 bad usage / kit image missing.
#
# Knobs (environment): RATE DURATION TRIGGER DEADLINE INITIAL_POLICIES WAIT_READY BACKOFF
# STALL_TIMEOUT (runner), RUNS (default 1), KEEP=1, STUB_RELOAD_COST_MS, REPRO_IMAGE, REDIS_IMAGE,
# RESULTS_DIR (default ./results), PULL_TIMEOUT (300 s), UP_TIMEOUT (240 s),
# REPRO_SECRET / REPRO_NODE_SECRET (random per invocation when unset).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

usage() {
  sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  echo "usage: $0 (--image IMAGE | --stub v2.9.4|fixed) [--label L] [--expect VERDICT]" >&2
  exit 2
}
if [[ -t 2 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
log() { printf '%srepro:%s %s\n' "$bold" "$plain" "$*" >&2; }
die() { log "error: $*"; exit 2; }

gateway_image="" stub_mode="" label="" expect="pass"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --image) gateway_image="${2:?--image needs a value}"; shift 2 ;;
    --stub) stub_mode="${2:?--stub needs v2.9.4 or fixed}"; shift 2 ;;
    --label) label="${2:?--label needs a value}"; shift 2 ;;
    --expect) expect="${2:?--expect needs a verdict}"; shift 2 ;;
    -h|--help) usage ;;
    *) log "unknown argument: $1"; usage ;;
  esac
done
[[ -n "$gateway_image" || -n "$stub_mode" ]] || usage
case "$stub_mode" in ""|v2.9.4|fixed) ;; *) die "--stub must be v2.9.4 or fixed, not '$stub_mode'" ;; esac
case "$expect" in pass|hang|unresponsive|infra_error|interrupted) ;;
  *) die "--expect must be pass, hang, unresponsive, infra_error or interrupted, not '$expect'" ;; esac

# ---- tools -------------------------------------------------------------------------------------
DOCKER="${DOCKER:-docker}"
if timeout 20 "$DOCKER" compose version >/dev/null 2>&1; then
  compose_cmd=("$DOCKER" compose)
elif [[ -x /usr/bin/docker ]] && timeout 20 /usr/bin/docker compose version >/dev/null 2>&1; then
  compose_cmd=(/usr/bin/docker compose)
elif command -v docker-compose >/dev/null; then
  compose_cmd=(docker-compose)
else
  die "neither 'docker compose' nor 'docker-compose' found: install Docker Compose"
fi
timeout 20 "$DOCKER" info >/dev/null 2>&1 || die "no Docker daemon answers '$DOCKER info': start Docker"

# "1m30s" / "120s" / "500ms" / "2" → whole seconds (rounded up), for outer timeouts only.
to_seconds() {
  local rest="$1" total_ms=0 num unit
  [[ "$rest" =~ ^[0-9]+$ ]] && { echo "$rest"; return; }
  while [[ "$rest" =~ ^([0-9]+)(ms|s|m|h)(.*)$ ]]; do
    num="${BASH_REMATCH[1]}" unit="${BASH_REMATCH[2]}" rest="${BASH_REMATCH[3]}"
    case "$unit" in ms) total_ms=$((total_ms + num)) ;; s) total_ms=$((total_ms + num * 1000)) ;;
      m) total_ms=$((total_ms + num * 60000)) ;; h) total_ms=$((total_ms + num * 3600000)) ;; esac
  done
  [[ -z "$rest" ]] || die "cannot read the duration '$1' (use e.g. 5s, 500ms, 2m, 1m30s)"
  echo $(((total_ms + 999) / 1000))
}

# ---- settings shared by every run ---------------------------------------------------------------
export REPRO_IMAGE="${REPRO_IMAGE:-reload-repro:local}"
export REDIS_IMAGE="${REDIS_IMAGE:-redis:7.0.15-bookworm}"
export RATE="${RATE:-500}" DURATION="${DURATION:-5s}" TRIGGER="${TRIGGER:-notify}"
export DEADLINE="${DEADLINE:-120s}" INITIAL_POLICIES="${INITIAL_POLICIES:-80400}"
export WAIT_READY="${WAIT_READY:-120s}" STUB_MODE="$stub_mode"
export BACKOFF="${BACKOFF:-seed}" STALL_TIMEOUT="${STALL_TIMEOUT:-30s}"
# Where run directories land; compose mounts it as the runner's /results. Absolute, so that it
# means the same to this script and to compose (which resolves paths from the compose file).
results_dir="${RESULTS_DIR:-results}"
[[ "$results_dir" == /* ]] || results_dir="$repo_root/$results_dir"
export RESULTS_DIR="$results_dir"
# Fresh secrets per invocation: nothing secret is ever written to disk, and the runner's
# redaction is exercised with values it cannot know in advance.
export REPRO_SECRET="${REPRO_SECRET:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export REPRO_NODE_SECRET="${REPRO_NODE_SECRET:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export COMPOSE_PROFILES=runner  # so `down` (v2) also removes the runner's one-off containers
runs="${RUNS:-1}" keep="${KEEP:-0}"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive whole number, not '$runs'"
pull_timeout="${PULL_TIMEOUT:-300}" up_timeout="${UP_TIMEOUT:-240}"
# The runner bounds itself (wait-ready + load + deadline); this outer bound only catches a runner
# that cannot stop, so it leaves two minutes of slack.
wait_ready_s="$(to_seconds "$WAIT_READY")" || die "WAIT_READY: bad duration"
duration_s="$(to_seconds "$DURATION")" || die "DURATION: bad duration"
deadline_s="$(to_seconds "$DEADLINE")" || die "DEADLINE: bad duration"
run_timeout=$((wait_ready_s + duration_s + deadline_s + 120))

compose_files=(-f docker-compose.yml)
if [[ -n "$stub_mode" ]]; then
  compose_files+=(-f docker-compose.stub.yml)
  gateway_image="$REPRO_IMAGE"
  label="${label:-selftest-$stub_mode}"
fi
export TYK_IMAGE="$gateway_image"
label="${label:-$(printf '%s' "$gateway_image" | sed 's/.*://')}"
# The label names a folder: keep it to safe characters.
label="$(printf '%s' "$label" | tr -c 'A-Za-z0-9._-' '-')"
export LABEL="$label"

# Evidence: which compose files and which gateway config this run used.
export REPRO_COMPOSE_SHA256
REPRO_COMPOSE_SHA256="$(cat docker-compose.yml ${stub_mode:+docker-compose.stub.yml} | sha256sum | cut -d' ' -f1)"
export REPRO_GATEWAY_CONFIG_SHA256
REPRO_GATEWAY_CONFIG_SHA256="$(find run -type f | LC_ALL=C sort | xargs cat | sha256sum | cut -d' ' -f1)"

# The runner writes the results folder as the invoking user (as 10001 when that is root), and
# reads the Docker socket through its group.
mkdir -p "$results_dir" || die "cannot create the results folder $results_dir (RESULTS_DIR)"
if [[ "$(id -u)" == 0 ]]; then
  export REPRO_UID=10001 REPRO_GID=10001
  chown 10001:10001 "$results_dir"
  if [[ -d "$results_dir/$label" ]]; then chown 10001:10001 "$results_dir/$label"; fi
else
  REPRO_UID="$(id -u)" REPRO_GID="$(id -g)"
  export REPRO_UID REPRO_GID
fi
export DOCKER_GID
DOCKER_GID="$(stat -c %g /var/run/docker.sock 2>/dev/null || echo 0)"

# Gateway images run as various users (v5: non-root): the mounted config must be world-readable.
if unreadable="$(find run ! -perm -o=r -print -quit)" && [[ -n "$unreadable" ]]; then
  die "$unreadable is not world-readable, so a non-root gateway cannot read it: chmod -R o+rX run"
fi

timeout 20 "$DOCKER" image inspect "$REPRO_IMAGE" >/dev/null 2>&1 \
  || die "kit image $REPRO_IMAGE not found: run 'make image' (from source) or 'make images-offline'"

# ---- one run ------------------------------------------------------------------------------------
project="" runner_name=""

take_down() {
  [[ -n "$project" ]] || return 0
  if [[ "$keep" == 1 ]]; then
    log "KEEP=1: stack left up; inspect with: ${compose_cmd[*]} -p $project ${compose_files[*]} logs"
    log "remove it with: make down"
    return 0
  fi
  timeout 30 "$DOCKER" rm -f "$runner_name" >/dev/null 2>&1 || true
  timeout 120 "${compose_cmd[@]}" -p "$project" "${compose_files[@]}" down -v --remove-orphans -t 5 \
    >/dev/null 2>&1 || log "warning: 'down -v' of $project failed; run 'make down'"
}

# Every long step runs in the background under `timeout` and is waited for in a loop, so that
# Ctrl-C / SIGTERM reach on_signal at once instead of after the step (bash defers traps until a
# foreground command ends, and `timeout` puts the command in its own process group).
bg_pid="" runner_active=0

# bounded SECONDS CMD...: runs CMD under `timeout`, returns its status.
bounded() {
  local limit="$1" status=0
  shift
  timeout --kill-after=15 "$limit" "$@" &
  bg_pid=$!
  while kill -0 "$bg_pid" 2>/dev/null; do status=0; wait "$bg_pid" || status=$?; done
  bg_pid=""
  return "$status"
}

# Ctrl-C / SIGTERM: pass it to the runner, which then writes an `interrupted` summary with what it
# measured; before the load, stop the current step. A second signal stops waiting altogether.
interrupted=0 interrupt_status=0
# shellcheck disable=SC2317  # called from the traps below
on_signal() {
  local sig="$1" status="$2"
  if [[ "$interrupted" == 1 ]]; then
    log "second $sig: not waiting any longer"
    [[ -z "$bg_pid" ]] || kill -KILL "$bg_pid" 2>/dev/null || true
    take_down
    exit "$status"
  fi
  interrupted=1 interrupt_status="$status"
  if [[ "$runner_active" == 1 ]] \
    && timeout 10 "$DOCKER" kill --signal "$sig" "$runner_name" >/dev/null 2>&1; then
    log "$sig: asked the runner to stop and write its summary (again to stop waiting)"
  elif [[ -n "$bg_pid" ]]; then
    log "$sig: stopping the current step (again to stop waiting)"
    kill -TERM "$bg_pid" 2>/dev/null || true
  fi
}
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'take_down' EXIT

latest_target() { readlink "$results_dir/$label/latest" 2>/dev/null || true; }

# Runs the runner container with the given command (none: the compose file's).
run_runner() {
  local status=0
  runner_name="${project}-runner" runner_active=1
  bounded "$run_timeout" "${compose_cmd[@]}" -p "$project" "${compose_files[@]}" \
    run --rm -T --no-deps --name "$runner_name" runner "$@" || status=$?
  runner_active=0
  return "$status"
}

record_infra_error() {
  log "recording infra_error: $1"
  run_runner run --out=/results --label="$label" --gateway=http://gateway:8080 \
    --dashboard=http://dashboard:9000 --redis=redis://redis:6379 --rate="$RATE" \
    --duration="$DURATION" --trigger="$TRIGGER" --deadline="$DEADLINE" --backoff="$BACKOFF" \
    --stall-timeout="$STALL_TIMEOUT" --compose-project="$project" --record-infra-error="$1" || true
}

ensure_gateway_image() {
  if timeout 20 "$DOCKER" image inspect "$gateway_image" >/dev/null 2>&1; then return 0; fi
  log "gateway image $gateway_image not present locally: docker pull (${pull_timeout} s)"
  local out="/tmp/reload-repro-pull-$$.log"
  if bounded "$pull_timeout" "$DOCKER" pull "$gateway_image" >"$out" 2>&1; then
    rm -f "$out"; return 0
  fi
  gateway_missing_reason="gateway image $gateway_image not found locally and the pull failed: $(
    tail -n 1 "$out" | cut -c1-300)"
  rm -f "$out"
  return 1
}

# Prints this run's summary and its verdict on stdout's last line ("none" when the run wrote no
# summary: `latest` still names the previous run, whose verdict must not be taken for this one's).
report_run() {
  local before="$1" dir verdict
  if [[ "$(latest_target)" == "$before" ]]; then
    log "no summary was written for this run (the runner's output above says why)"
    echo "none"; return
  fi
  dir="$results_dir/$label/$(latest_target)"
  if [[ ! -f "$dir/summary.json" ]]; then log "no summary.json in $dir"; echo "none"; return; fi
  [[ -f "$dir/summary.md" ]] && cat "$dir/summary.md" >&2
  log "run directory: $dir"
  verdict="$(grep -m1 -oE '"verdict": *"[a-z_]+"' "$dir/summary.json" | sed -E 's/.*"([a-z_]+)"$/\1/')"
  echo "${verdict:-none}"
}

one_run() {
  local n="$1" before
  project="reload-repro-$(printf '%s' "$label" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9' '-')-$(date -u +%Y%m%d%H%M%S)-$$-$n"
  project="$(printf '%s' "$project" | tr -s '-')"
  export COMPOSE_PROJECT_NAME="$project"
  printf '%s\n' "$project" >"$results_dir/.last-project" 2>/dev/null || true
  before="$(latest_target)"
  log "run $n/$runs: gateway $gateway_image${stub_mode:+ (stub, mode $stub_mode)}, label $label, project $project"

  gateway_missing_reason="" runner_status=0
  if [[ -z "$stub_mode" ]] && ! ensure_gateway_image; then
    record_infra_error "$gateway_missing_reason"
  else
    # A service that fails to start or to get healthy is not fatal here: the runner probes each
    # one with its own deadline and writes an infra_error summary naming it and its last logs.
    log "starting redis, dashboard, gateway (${up_timeout} s)"
    bounded "$up_timeout" "${compose_cmd[@]}" -p "$project" "${compose_files[@]}" \
      up -d redis dashboard gateway >"/tmp/reload-repro-up-$$.log" 2>&1 \
      || { log "compose up did not finish cleanly (the runner will say which service):"; \
           tail -n 5 "/tmp/reload-repro-up-$$.log" >&2; }
    rm -f "/tmp/reload-repro-up-$$.log"
    if [[ "$interrupted" == 1 ]]; then
      record_infra_error "interrupted (signal) while starting the stack, before any load"
    else
      log "running the load (at most ${run_timeout} s)"
      run_runner || runner_status=$?
      [[ "$runner_status" == 0 ]] || log "runner exited with status $runner_status (the verdict decides)"
    fi
  fi

  if [[ "$(latest_target)" == "$before" ]]; then
    if [[ "${runner_status:-0}" == 124 || "${runner_status:-0}" == 137 ]]; then
      record_infra_error "the runner was stopped after ${run_timeout} s without writing a summary"
    else
      record_infra_error "the runner exited with status ${runner_status:-0} without writing a summary (see its output above)"
    fi
  fi
  take_down
  project=""
  last_verdict="$(report_run "$before" | tail -n 1)"
  log "verdict: $last_verdict"
}

ok=1
for n in $(seq 1 "$runs"); do
  one_run "$n"
  [[ "$last_verdict" == "$expect" ]] || ok=0
  [[ "$interrupted" == 1 ]] && break
done
trap - EXIT
if [[ "$interrupted" == 1 ]]; then exit "$interrupt_status"; fi
if [[ "$ok" == 1 ]]; then
  log "all $runs run(s) ended with verdict '$expect' as expected"; exit 0
fi
log "some run did not end with verdict '$expect' (see above)"; exit 1
