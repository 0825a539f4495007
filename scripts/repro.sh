#!/usr/bin/env bash
# One set of reproduction runs under Docker Compose (RUNS=N, default 1), ending with a summary
# per run, a set.json, a cross-run line and an exit status. `make repro` / `make selftest` call
# this; CI calls it directly, because make turns every failure into exit status 2:
#
#   scripts/repro.sh --image tykio/tyk-gateway:v2.9.4 --label 2.9.4
#   scripts/repro.sh --stub v2.9.4 --label selftest-v2.9.4 --expect hang
#
# This script only sequences compose calls. Every decision (knobs, label, config hashes, which
# run wrote which summary, the set, the exit status) is `reload-repro set begin|add|finish`, run
# in the kit image with no network. Each run gets its own compose project, taken down (`down -v`)
# afterwards unless KEEP=1; every step is bounded by `timeout`; Ctrl-C / SIGTERM reach the runner.
#
# Exit status: 0 every run ended with the expected verdict (--expect / EXPECT=, default pass),
# 1 a run measured another (hang, unresponsive; with --expect hang: a pass), 2 the kit could not
# measure (infra_error, bad options, no kit image, no Docker), 130 / 143 interrupted.
#
# Knobs (environment): RATE DURATION TRIGGER DEADLINE INITIAL_POLICIES WAIT_READY BACKOFF
# STALL_TIMEOUT RUNS GATEWAYS (checked by the binary; GATEWAYS=N, 1 to 64, runs N gateway
# containers on the one Redis and mock), EXPECT, KEEP=1, STUB_RELOAD_COST_MS, STUB_PER_POLICY_COST_US, STUB_SWAP_SHARE, STUB_RELOAD_WORK, STUB_NO_POLICY_LOG, REPRO_IMAGE,
# REDIS_IMAGE, RESULTS_DIR (default ./results), PULL_TIMEOUT (300 s), UP_TIMEOUT (240 s),
# REPRO_SECRET / REPRO_NODE_SECRET (random per invocation when unset).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

usage() {
  sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  echo "usage: $0 (--image IMAGE | --stub v2.9.4|fixed) [--label L] [--expect VERDICT[,VERDICT]]" >&2
  exit 2
}
if [[ -t 2 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
log() { printf '%srepro:%s %s\n' "$bold" "$plain" "$*" >&2; }
die() { log "error: $*"; exit 2; }

gateway_image="" stub_mode="" label="" expect="${EXPECT:-pass}"
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

export REPRO_IMAGE="${REPRO_IMAGE:-reload-repro:local}"
export REDIS_IMAGE="${REDIS_IMAGE:-redis:7.0.15-bookworm}"
timeout 20 "$DOCKER" image inspect "$REPRO_IMAGE" >/dev/null 2>&1 \
  || die "kit image $REPRO_IMAGE not found: run 'make image' (from source) or 'make images-offline'"

# ---- the results folder, checked here before any container starts ------------------------------
# Absolute, so that it means the same to this script, to compose and to the kit containers (they
# mount it at this very path, so every path they print is the one you can open).
results_dir="${RESULTS_DIR:-results}"
[[ "$results_dir" == /* ]] || results_dir="$repo_root/$results_dir"
mkdir -p "$results_dir" || die "cannot create the results folder $results_dir (RESULTS_DIR)"
[[ -w "$results_dir" ]] || die "the results folder $results_dir (RESULTS_DIR) is not writable by you"
export RESULTS_DIR="$results_dir"
# Every kit container (the runner too) runs as you, so what it writes is yours and no folder of
# yours is ever chowned.
REPRO_UID="$(id -u)" REPRO_GID="$(id -g)"
export REPRO_UID REPRO_GID
export DOCKER_GID
DOCKER_GID="$(stat -c %g /var/run/docker.sock 2>/dev/null || echo 0)"

# Every long step runs in the background under `timeout` and is waited for in a loop, so that
# Ctrl-C / SIGTERM reach on_signal at once instead of after the step (bash defers traps until a
# foreground command ends, and `timeout` puts the command in its own process group).
bg_pid=""
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

# kit ARGS...: `reload-repro ARGS` in the kit image: no network, the results folder at its host
# path, this checkout read-only at /repo, the knobs passed through by name.
kit() {
  bounded 60 "$DOCKER" run --rm --network none --user "$REPRO_UID:$REPRO_GID" \
    -v "$results_dir:$results_dir" -v "$repo_root:/repo:ro" \
    -e RATE -e DURATION -e TRIGGER -e DEADLINE -e INITIAL_POLICIES -e WAIT_READY -e BACKOFF \
    -e STALL_TIMEOUT -e RUNS -e GATEWAYS -e NO_COLOR=1 "$REPRO_IMAGE" "$@"
}

# ---- the plan: every knob checked, label, config hashes, the set directory ----------------------
plan_file="$(mktemp /tmp/reload-repro-plan.XXXXXX)"
begin_args=(set begin --out "$results_dir" --expect "$expect" --repo /repo)
if [[ -n "$stub_mode" ]]; then begin_args+=(--stub "$stub_mode"); else begin_args+=(--image "$gateway_image"); fi
if [[ -n "$label" ]]; then begin_args+=(--label "$label"); fi
status=0
kit "${begin_args[@]}" >"$plan_file" || status=$?
if [[ "$status" != 0 ]]; then rm -f "$plan_file"; exit 2; fi
set_dir="" runs="" run_timeout="" compose_sha="" config_sha="" gateways=1
while IFS='=' read -r key value; do
  case "$key" in
    label) label="$value" ;;
    set_dir) set_dir="$value" ;;
    runs) runs="$value" ;;
    run_timeout_s) run_timeout="$value" ;;
    compose_sha256) compose_sha="$value" ;;
    gateway_config_sha256) config_sha="$value" ;;
    GATEWAYS) gateways="$value" ;;
    RATE|DURATION|TRIGGER|DEADLINE|INITIAL_POLICIES|WAIT_READY|BACKOFF|STALL_TIMEOUT) export "$key=$value" ;;
    *) ;;
  esac
done <"$plan_file"
rm -f "$plan_file"
[[ -n "$set_dir" && -n "$runs" && -n "$run_timeout" ]] || die "reload-repro set begin printed no plan"

# Compose's own chatter (create/start/stop/remove lines, "ERROR: 130" after a Ctrl-C) goes here,
# not to the terminal; the runner's output is copied here too.
compose_log="$set_dir/compose.log"
: >>"$compose_log" 2>/dev/null || compose_log=/dev/null
compose_noise='^(Creating|Starting|Stopping|Removing|Recreating|Pulling|Attaching) |^ *(Container|Network|Volume) |^\[\+\]|^ERROR: [0-9]+$|^[0-9]+$'
# The runner gets a TTY (and so a live progress bar) only when you have one.
runner_tty=(-T)
if [[ -t 0 && -t 1 && -t 2 ]]; then runner_tty=(); fi

# GATEWAYS reaches the runner as REPRO_GATEWAY_REPLICAS (docker-compose.yml).
export LABEL="$label" STUB_MODE="$stub_mode" GATEWAYS="$gateways"
export REPRO_COMPOSE_SHA256="$compose_sha" REPRO_GATEWAY_CONFIG_SHA256="$config_sha"
# Fresh secrets per invocation: nothing secret is ever written to disk, and the runner's
# redaction is exercised with values it cannot know in advance.
export REPRO_SECRET="${REPRO_SECRET:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export REPRO_NODE_SECRET="${REPRO_NODE_SECRET:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
export COMPOSE_PROFILES=runner  # so `down` (v2) also removes the runner's one-off containers
keep="${KEEP:-0}" pull_timeout="${PULL_TIMEOUT:-300}" up_timeout="${UP_TIMEOUT:-240}"

compose_files=(-f docker-compose.yml)
if [[ -n "$stub_mode" ]]; then
  compose_files+=(-f docker-compose.stub.yml)
  gateway_image="$REPRO_IMAGE"
fi
export TYK_IMAGE="$gateway_image"

# ---- one run ------------------------------------------------------------------------------------
project="" runner_name=""

take_down() {
  [[ -n "$project" ]] || return 0
  if [[ "$keep" == 1 ]]; then
    log "KEEP=1: stack left up; inspect with: make logs (or ${compose_cmd[*]} -p $project ${compose_files[*]} logs)"
    log "remove it with: make down"
    return 0
  fi
  timeout 30 "$DOCKER" rm -f "$runner_name" >>"$compose_log" 2>&1 || true
  timeout 120 "${compose_cmd[@]}" -p "$project" "${compose_files[@]}" down -v --remove-orphans -t 5 \
    >>"$compose_log" 2>&1 || log "warning: 'down -v' of $project failed; run 'make down' (details: $compose_log)"
}

# Ctrl-C / SIGTERM: pass it to the runner, which then writes an `interrupted` summary with what it
# measured; before the load, stop the current step. A second signal stops waiting altogether.
caught="" runner_active=0
# shellcheck disable=SC2317  # called from the traps below
on_signal() {
  local sig="$1" status="$2"
  if [[ -n "$caught" ]]; then
    log "second $sig: not waiting any longer"
    [[ -z "$bg_pid" ]] || kill -KILL "$bg_pid" 2>/dev/null || true
    take_down
    exit "$status"
  fi
  caught="$sig"
  if [[ "$runner_active" == 1 && "$sig" == INT && ${#runner_tty[@]} == 0 ]]; then
    # On a TTY, Ctrl-C already reached the runner through its terminal: sending it again would
    # count as a second one.
    log "$sig: the runner stops and writes its summary (again to stop waiting)"
  elif [[ "$runner_active" == 1 ]] \
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

# Runs the runner container with the given command (none: the compose file's).
run_runner() {
  local status=0
  runner_name="${project}-runner" runner_active=1
  # Compose's stderr carries the runner's (without a TTY) and compose's own lines: all of it goes
  # to compose.log, only the runner's to the terminal.
  if [[ ${#runner_tty[@]} == 0 ]]; then
    # With a TTY: compose must keep the terminal as its stdin and stay in the foreground process
    # group (a background job would get /dev/null, or be stopped reading the terminal).
    timeout --foreground --kill-after=15 "$run_timeout" "${compose_cmd[@]}" -p "$project" \
      "${compose_files[@]}" run --rm --no-deps --name "$runner_name" runner "$@" <&0 \
      2> >(tee -a "$compose_log" | grep --line-buffered -Ev "$compose_noise" >&2) &
    bg_pid=$!
    while kill -0 "$bg_pid" 2>/dev/null; do status=0; wait "$bg_pid" || status=$?; done
    bg_pid=""
  else
    bounded "$run_timeout" "${compose_cmd[@]}" -p "$project" "${compose_files[@]}" \
      run --rm -T --no-deps --name "$runner_name" runner "$@" \
      2> >(tee -a "$compose_log" | grep --line-buffered -Ev "$compose_noise" >&2) || status=$?
  fi
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

pull_failure=""
ensure_gateway_image() {
  if timeout 20 "$DOCKER" image inspect "$gateway_image" >/dev/null 2>&1; then return 0; fi
  log "gateway image $gateway_image not present locally: docker pull (${pull_timeout} s)"
  local out="/tmp/reload-repro-pull-$$.log"
  if bounded "$pull_timeout" "$DOCKER" pull "$gateway_image" >"$out" 2>&1; then
    rm -f "$out"; return 0
  fi
  pull_failure="$(tail -n 1 "$out" | cut -c1-300)"
  rm -f "$out"
  return 1
}

# add_run: takes this run's summary into the set (exit 3: the run wrote none).
add_run() { kit set add --set "$set_dir"; }

# Compose projects of this checkout share a prefix, so `make down` takes down only these.
checkout_id="$(printf '%s' "$repo_root" | sha256sum | cut -c1-8)"

one_run() {
  local n="$1" status=0
  project="reload-repro-$checkout_id-$(printf '%s' "$label" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9' '-')-$(date -u +%Y%m%d%H%M%S)-$$-$n"
  project="$(printf '%s' "$project" | tr -s '-')"
  export COMPOSE_PROJECT_NAME="$project"
  printf '%s\n' "$project" >"$results_dir/.last-project" 2>/dev/null || true
  if [[ "$keep" == 1 ]]; then printf '%s\n' "$project" >"$results_dir/.last-kept-project" 2>/dev/null || true; fi
  log "run $n/$runs: gateway $gateway_image${stub_mode:+ (stub, mode $stub_mode)}, label $label, project $project"

  local runner_status=0
  if [[ -z "$stub_mode" ]] && ! ensure_gateway_image; then
    record_infra_error "gateway image $gateway_image not found locally and the pull failed: $pull_failure"
  else
    # A service that fails to start or to get healthy is not fatal here: the runner probes each
    # one with its own deadline and writes an infra_error summary naming it and its last logs.
    # One gateway: exactly the call it always was. Several: one service scaled to N containers.
    local scale=()
    if [[ "$gateways" != 1 ]]; then scale=(--scale "gateway=$gateways"); fi
    log "starting redis, dashboard, $([[ "$gateways" == 1 ]] && echo gateway || echo "$gateways gateways") (${up_timeout} s)"
    bounded "$up_timeout" "${compose_cmd[@]}" -p "$project" "${compose_files[@]}" \
      up -d "${scale[@]}" redis dashboard gateway >"/tmp/reload-repro-up-$$.log" 2>&1 \
      || { log "compose up did not finish cleanly (the runner will say which service):"; \
           tail -n 5 "/tmp/reload-repro-up-$$.log" >&2; }
    cat "/tmp/reload-repro-up-$$.log" >>"$compose_log" 2>/dev/null || true
    rm -f "/tmp/reload-repro-up-$$.log"
    if [[ -n "$caught" ]]; then
      record_infra_error "interrupted ($caught) while starting the stack, before any load"
    else
      log "running the load: ${DURATION} at ${RATE}/s, then up to ${DEADLINE} for the waiting scenarios (the runner is stopped after ${run_timeout} s at most)"
      run_runner || runner_status=$?
      [[ "$runner_status" == 0 ]] || log "runner exited with status $runner_status (the verdict decides)"
    fi
  fi

  add_run || status=$?
  if [[ "$status" == 3 ]]; then
    if [[ "$runner_status" == 124 || "$runner_status" == 137 ]]; then
      record_infra_error "the runner was stopped after ${run_timeout} s without writing a summary"
    else
      record_infra_error "the runner exited with status $runner_status without writing a summary (see its output above and $compose_log)"
    fi
    add_run || log "no summary for run $n, not even an infra_error one (see above)"
  fi
  take_down
  project=""
  if [[ -n "$pull_failure" ]]; then
    log "the gateway image could not be pulled. Next steps: 'docker login' for a private registry;"
    log "  'docker load -i image.tar' on a machine without a registry; TYK_IMAGE=<image> for an"
    log "  image you already have ('docker image ls'); 'make selftest' checks the kit without any Tyk image."
  fi
}

for n in $(seq 1 "$runs"); do
  one_run "$n"
  [[ -z "$caught" ]] || break
done
trap - EXIT
status=0
kit set finish --set "$set_dir" ${caught:+--signal "${caught,,}"} || status=$?
case "$status" in
  0|1|2|130|143) exit "$status" ;;
  *) log "reload-repro set finish did not run (status $status)"; exit 2 ;;
esac
