#!/usr/bin/env bash
# End-to-end performance figures of the kit's own parts (issue 6), printed as Markdown tables.
# `make bench` calls this. Everything runs natively on loopback: a private redis-server, the
# dashboard mock, the stub gateway and the runner (release build), each on a free port.
#
# Sections (pick with BENCH_SECTIONS, default "mock compress micro runner large calib fanout"; also
# "stub" and "limits", the CPU-burning stub at the seed load and the kit's largest load):
#   mock     /system/policies latency at 82,905 / 100,000 / 1,000,000 policies (curl, keep-alive),
#            add-policy latency alone and with 2 concurrent fetch loops, RSS of the mock.
#   compress would gzip help a gateway on loopback? (gzip/gunzip of the real body vs transfer)
#   micro    criterion: pool fetch vs naive serde re-encode, side by side (cargo bench).
#   runner   500/s at 80,400 policies, then rate steps against the stub (fixed, cost 0, tick 100ms).
#   large    one long run (BENCH_LARGE_SCENARIOS, default 200,000) for memory per scenario.
#   calib    stub cost 300 ms on a 1 s tick vs the latency model.
#   stub     the stub's default (CPU-burning) model at the seed load, BENCH_STUB_RUNS (5) per mode.
#   limits   rate steps (BENCH_LIMIT_RATES) and pool sizes (BENCH_LIMIT_POLICIES) against it.
#   fanout   N gateways fetching the 82,905-policy list back to back at once (BENCH_FANOUT_NODES,
#            default "0 1 3 10"; BENCH_FANOUT_DURATION s each, default 10) while policies are
#            added at BENCH_FANOUT_ADD_RATE (500) per second: per node fetches, MB/s, p50/p99.
#            BENCH_FANOUT_COMPARE=<another reload-repro binary> runs each N against both mocks,
#            alternating which goes first, and adds a ratio table (before/after a mock change).
#   fleet    one runner against N cost-0 stub gateways (BENCH_FLEET_NODES, default "1 2 4 8 12 16")
#            at BENCH_FLEET_RATE (500)/s for BENCH_FLEET_DURATION (5s): scheduler lag, late starts,
#            runner_was_bottleneck and the CPU of runner, mock and stubs (largest N it holds);
#            BENCH_FLEET_STUB_NICE=19 starts the stubs under `nice` (the runner's own limit).
#
# Knobs: BENCH_OUT (default results/bench/<UTC>), BENCH_RATES ("500 1000 2000 5000 8000"),
# BENCH_STEP_DURATION (5s), BENCH_LARGE_SCENARIOS (200000), BENCH_LARGE_RATE (2000),
# REPRO_BIN (default target/release/reload-repro, built when missing).
# Exit status: 0 when every figure was measured (targets missed are reported, not failures),
# 2 when a tool is missing or a service did not start.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

sections="${BENCH_SECTIONS:-mock compress micro runner large calib fanout}"
rates="${BENCH_RATES:-500 1000 2000 5000 8000}"
step_duration="${BENCH_STEP_DURATION:-5s}"
large_scenarios="${BENCH_LARGE_SCENARIOS:-200000}"
large_rate="${BENCH_LARGE_RATE:-2000}"
out="${BENCH_OUT:-results/bench/$(date -u +%Y%m%dT%H%M%SZ)}"
target_dir="${CARGO_TARGET_DIR:-target}"
bin="${REPRO_BIN:-$target_dir/release/reload-repro}"

for tool in curl redis-server gzip awk sort /usr/bin/time; do
  command -v "$tool" >/dev/null || die "'$tool' not found: apt-get install -y curl redis-server gzip time"
done
if [[ ! -x "$bin" ]]; then
  log "building the release binary (once; a few minutes on 2 cores)"
  timeout 1800 cargo build --release --bin reload-repro || die "cargo build --release failed"
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
report="$out/bench.md"
: >"$report"

# A per-invocation secret: never printed, only passed through the environment.
secret="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export REPRO_SECRET="$secret" REPRO_NODE_SECRET="$secret" NO_COLOR=1

# ---- process bookkeeping: every service we start is stopped by its pid ------------------------
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stop_pid() {
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
}

# A port nobody listens on (bash's /dev/tcp connect fails), below the kernel's ephemeral range
# (the runner opens tens of thousands of client connections, which take ephemeral ports).
free_port() {
  local p low
  low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  for _ in $(seq 100); do
    p=$((10000 + RANDOM % (low - 10000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  die "no free port found"
}

wait_http() { # url what deadline_s
  local deadline=$((SECONDS + $3))
  until curl -fsS -m 2 -o /dev/null -H "X-Tyk-Authorization: $secret" "$1" 2>/dev/null; do
    ((SECONDS < deadline)) || die "$2 did not answer $1 within $3 s (log: $out/logs/)"
    sleep 0.1
  done
}

# CPU seconds (user+sys) and peak/current RSS (MB) of a live pid.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
rss_mb() { awk -v k="$2" '$1 == k":" { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# Nearest-rank percentiles of a column of seconds, printed in ms: "p50 p99 max n".
pct_ms() {
  sort -g "$1" | awk '{ v[NR] = $1 * 1000 } END {
    if (NR == 0) { print "- - - 0"; exit }
    i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999)
    printf "%.2f %.2f %.2f %d\n", v[i50], v[i99], v[NR], NR }'
}

emit() { printf '%s\n' "$*" | tee -a "$report"; }

mkdir -p "$out/logs"
redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  >"$out/logs/redis.log" 2>&1 &
pids+=("$!")
redis_url="redis://127.0.0.1:$redis_port"
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

start_mock() { # policies name → sets mock_pid mock_url (binary: $mock_bin, default $bin)
  local port; port="$(free_port)"
  "${mock_bin:-$bin}" dashboard --listen "127.0.0.1:$port" --redis "$redis_url" --initial-policies "$1" \
    >"$out/logs/mock-$2.log" 2>&1 &
  mock_pid=$!; pids+=("$mock_pid")
  mock_url="http://127.0.0.1:$port"
  wait_http "$mock_url/health" "the dashboard mock ($1 policies)" 120
}

# Without extra flags: fixed mode, a sleeping fixed cost and no per-policy cost (the runner steps
# and the latency-model calibration measure the kit, not the reload model). With a mode and extra
# flags (the stub section): exactly those, on top of the stub's calibrated defaults.
start_stub() { # tick cost_ms name [mode [flags…]] → sets stub_pid stub_url
  local port mode="${4:-fixed}" extra=("${@:5}"); port="$(free_port)"
  (($# > 3)) || extra=(--per-policy-cost-us 0 --reload-work sleep)
  ${stub_nice:+nice -n "$stub_nice"} "$bin" stub-gateway --listen "127.0.0.1:$port" --dashboard "$mock_url" --redis "$redis_url" \
    --reload-mode "$mode" --tick "$1" --reload-cost-ms "$2" "${extra[@]}" \
    >"$out/logs/stub-$3.log" 2>&1 &
  stub_pid=$!; pids+=("$stub_pid")
  stub_url="http://127.0.0.1:$port"
  wait_http "$stub_url/tyk/apis" "the stub gateway" 60
}

# n sequential requests on one keep-alive connection; one line "total ttfb" (seconds) each.
fetches() { # url n outfile
  local args=() i
  for ((i = 0; i < $2; i++)); do args+=(-o /dev/null "$1"); done
  curl -sS -H "authorization: $secret" -w '%{time_total} %{time_starttransfer}\n' "${args[@]}" >"$3"
}
adds() { # url n outfile
  local args=() i
  for ((i = 0; i < $2; i++)); do args+=(-o /dev/null "$1"); done
  curl -sS -X POST -w '%{time_total}\n' "${args[@]}" >"$3"
}

emit "# reload-repro benchmarks"
emit ""
emit "Machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), load average at start: $(cut -d' ' -f1-3 /proc/loadavg), $(uname -sr). Binary: $bin."
emit ""

# ---- mock ------------------------------------------------------------------------------------
section_mock() {
  emit "## Dashboard mock: GET /system/policies (curl, one keep-alive connection, sequential)"
  emit ""
  emit "| policies | body MB | fetches | p50 ms | p99 ms | max ms | TTFB p50 ms | mock RSS MB (now / peak) | startup ms |"
  emit "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  local n count t0 startup body p ttfb
  for n in 82905 100000 1000000; do
    count=200; [[ $n -ge 1000000 ]] && count=20
    t0=$(date +%s%N)
    start_mock "$n" "fetch-$n"
    startup=$(( ($(date +%s%N) - t0) / 1000000 ))
    curl -sS -H "authorization: $secret" -o "$out/body-$n.json" "$mock_url/system/policies"
    body=$(awk -v b="$(stat -c %s "$out/body-$n.json")" 'BEGIN { printf "%.1f", b / 1e6 }')
    fetches "$mock_url/system/policies" "$count" "$out/fetch-$n.txt"
    read -r p50 p99 max _ < <(pct_ms "$out/fetch-$n.txt")
    awk '{ print $2 }' "$out/fetch-$n.txt" >"$out/ttfb-$n.txt"
    read -r ttfb _ < <(pct_ms "$out/ttfb-$n.txt")
    emit "| $n | $body | $count | $p50 | $p99 | $max | $ttfb | $(rss_mb "$mock_pid" VmRSS) / $(rss_mb "$mock_pid" VmHWM) | $startup |"
    if [[ $n == 82905 ]]; then
      mock_fetch_p50_82905="$p50"
      section_adds
    fi
    stop_pid "$mock_pid"
    [[ $n == 82905 ]] || rm -f "$out/body-$n.json"
  done
  emit ""
  emit "Add latency at 82,905 policies (POST /repro/policies, includes the Redis PUBLISH):"
  emit ""
  emit "| while | adds | p50 ms | p99 ms | max ms |"
  emit "|---|---:|---:|---:|---:|"
  emit "$add_rows"
  emit ""
}

section_adds() {
  add_rows=""
  adds "$mock_url/repro/policies" 2000 "$out/add-alone.txt"
  read -r a50 a99 amax an < <(pct_ms "$out/add-alone.txt")
  add_rows+="| nothing else runs | $an | $a50 | $a99 | $amax |"$'\n'
  # Two fetch loops (a gateway fetching back to back, twice over) for as long as the adds run.
  local loops=() i
  for i in 1 2; do
    (while :; do fetches "$mock_url/system/policies" 20 /dev/null || exit 0; done) &
    loops+=("$!")
  done
  sleep 0.5
  adds "$mock_url/repro/policies" 2000 "$out/add-fetching.txt"
  for i in "${loops[@]}"; do
    { pkill -TERM -P "$i" || true # its curl (by parent pid); the loop then exits
      kill -TERM "$i" || true
      wait "$i" || true; } 2>/dev/null
  done
  read -r a50 a99 amax an < <(pct_ms "$out/add-fetching.txt")
  add_rows+="| 2 fetch loops run | $an | $a50 | $a99 | $amax |"
}

# ---- compression -----------------------------------------------------------------------------
section_compress() {
  local body="$out/body-82905.json"
  if [[ ! -s "$body" ]]; then
    start_mock 82905 compress
    curl -sS -H "authorization: $secret" -o "$body" "$mock_url/system/policies"
    fetches "$mock_url/system/policies" 50 "$out/fetch-82905.txt"
    read -r mock_fetch_p50_82905 _ < <(pct_ms "$out/fetch-82905.txt")
    stop_pid "$mock_pid"
  fi
  time_ms() { # command… → mean ms over 10 runs
    local t0 i; t0=$(date +%s%N)
    for i in $(seq 10); do "$@" >/dev/null; done
    echo $(( ($(date +%s%N) - t0) / 10000000 ))
  }
  gzip -1 -c "$body" >"$out/body.gz1"; gzip -6 -c "$body" >"$out/body.gz6"
  local raw gz1 gz6 c1 c6 d1
  raw=$(stat -c %s "$body"); gz1=$(stat -c %s "$out/body.gz1"); gz6=$(stat -c %s "$out/body.gz6")
  c1=$(time_ms gzip -1 -c "$body"); c6=$(time_ms gzip -6 -c "$body")
  d1=$(time_ms gzip -dc "$out/body.gz1")
  emit "## Would gzip help a gateway on loopback? (82,905 policies)"
  emit ""
  emit "| | bytes | ms |"
  emit "|---|---:|---:|"
  emit "| identity: fetch over loopback (p50 above) | $raw | ${mock_fetch_p50_82905:-?} |"
  emit "| gzip -1: compress per request / decompress | $gz1 | $c1 / $d1 |"
  emit "| gzip -6: compress per request | $gz6 | $c6 |"
  emit ""
  rm -f "$out/body.gz1" "$out/body.gz6"
}

# ---- criterion (pool vs naive) ----------------------------------------------------------------
section_micro() {
  log "cargo bench --bench mock (criterion; builds the bench once)"
  timeout 1800 cargo bench --bench mock -- policy_fetch_82905 >"$out/logs/criterion-mock.txt" 2>&1 \
    || die "cargo bench failed: see $out/logs/criterion-mock.txt"
  local dir="$target_dir/criterion/policy_fetch_82905" pool body naive
  est() { jq -r '.median.point_estimate / 1e6' "$dir/$1/new/estimates.json"; }
  pool=$(est pool_chunks); body=$(est pool_body_bytes); naive=$(est naive_serde_reencode)
  emit "## Pool vs naive re-encode, same process (criterion medians, 82,905 policies)"
  emit ""
  emit "| path | ms per fetch | naive ÷ this |"
  emit "|---|---:|---:|"
  awk -v p="$pool" -v b="$body" -v n="$naive" 'BEGIN {
    printf "| pool: snapshot + chunk list (what the mock does) | %.4f | %.0f× |\n", p, n / p
    printf "| pool: + gather the body into one buffer | %.3f | %.1f× |\n", b, n / b
    printf "| naive: serde_json re-encode of the list | %.2f | 1× |\n", n }' | tee -a "$report"
  emit ""
}

# ---- runner ------------------------------------------------------------------------------------
# run_step name rate duration backoff [deadline] → one table row; services must be up.
run_step() {
  local name="$1" rate="$2" duration="$3" backoff="$4" deadline="${5:-60s}"
  local timefile="$out/logs/time-$1.txt"
  local mock_cpu0 stub_cpu0 summary
  mock_cpu0=$(cpu_s "$mock_pid"); stub_cpu0=$(cpu_s "$stub_pid")
  /usr/bin/time -v -o "$timefile" "$bin" run --gateway "$stub_url" --dashboard "$mock_url" \
    --redis "$redis_url" --rate "$rate" --duration "$duration" --trigger notify \
    --backoff "$backoff" --deadline "$deadline" --stall-timeout 20s --wait-ready 30s \
    --out "$out/runs" --label "$name" --quiet >"$out/logs/run-$name.log" 2>&1 || true
  summary="$out/runs/$name/latest/summary.json"
  [[ -s "$summary" ]] || die "the runner wrote no summary for $name: see $out/logs/run-$name.log"
  local user sys rss
  user=$(awk -F': ' '/User time/ { print $2 }' "$timefile")
  sys=$(awk -F': ' '/System time/ { print $2 }' "$timefile")
  rss=$(awk -F': ' '/Maximum resident/ { printf "%.1f", $2 / 1024 }' "$timefile")
  jq -r --arg rate "$rate" --arg user "$user" --arg sys "$sys" --arg rss "$rss" \
    --arg mock "$(awk -v a="$(cpu_s "$mock_pid")" -v b="$mock_cpu0" 'BEGIN { printf "%.1f", a - b }')" \
    --arg stub "$(awk -v a="$(cpu_s "$stub_pid")" -v b="$stub_cpu0" 'BEGIN { printf "%.1f", a - b }')" '
    def r(x): if x == null then "-" else (x * 100 | round / 100 | tostring) end;
    (($user | tonumber) + ($sys | tonumber)) as $cpu
    | "| \($rate) | \(.scenarios.scheduled) | \(.scenarios.succeeded) | \(.verdict) | "
      + "\(r(.scheduler.lag_p50_ms)) | \(r(.scheduler.lag_p99_ms)) | \(r(.scheduler.lag_max_ms)) | "
      + "\(.scheduler.late_starts) | \(r(.latency_ms.p50)) | \(r(.latency_ms.p99)) | "
      + "\($cpu * 100 | round / 100) | \(($cpu / .scenarios.started * 1e6) | round) | "
      + "\($mock) / \($stub) | \($rss) |"' "$summary" | tee -a "$report"
}

runner_header() {
  emit "| rate /s | scheduled | succeeded | verdict | lag p50 ms | lag p99 ms | lag max ms | late (>10 ms) | latency p50 ms | latency p99 ms | runner CPU s | CPU µs / scenario | mock / stub CPU s | runner peak RSS MB |"
  emit "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
}

section_runner() {
  emit "## Runner: 500 scenarios/s at the seed's 80,400 policies (stub fixed, 1 s tick, cost 0, backoff fine)"
  emit ""
  runner_header
  start_mock 80400 runner-500; start_stub 1s 0 runner-500
  run_step r500 500 10s fine
  stop_pid "$stub_pid"; stop_pid "$mock_pid"
  emit ""
  emit "## Runner: rate steps (stub fixed, tick 100ms, cost 0; mock starts at 1,000 policies; $step_duration each; backoff fine)"
  emit ""
  runner_header
  local rate
  for rate in $rates; do
    start_mock 1000 "step-$rate"; start_stub 100ms 0 "step-$rate"
    run_step "step-$rate" "$rate" "$step_duration" fine
    stop_pid "$stub_pid"; stop_pid "$mock_pid"
  done
  emit ""
}

section_large() {
  local duration_s=$(( (large_scenarios + large_rate - 1) / large_rate ))
  emit "## Runner: one large run ($large_scenarios scenarios at $large_rate/s; stub fixed, tick 1s; mock starts at 1,000)"
  emit ""
  runner_header
  start_mock 1000 large; start_stub 1s 0 large
  run_step large "$large_rate" "${duration_s}s" fine "$((duration_s + 60))s"
  emit ""
  emit "Mock after the large run: $(rss_mb "$mock_pid" VmRSS) MB RSS, $(rss_mb "$mock_pid" VmHWM) MB peak."
  stop_pid "$stub_pid"; stop_pid "$mock_pid"
  emit ""
}

# ---- the CPU-burning stub at the seed load, and the kit's limits -------------------------------
# stub: BENCH_STUB_RUNS fresh stacks per mode at the seed load (500/s for 5 s, 80,400 policies,
# notify, seed backoff) against the stub's DEFAULT reload model (CPU-burning, v2.9.4 logging one
# line per policy): its hang / pass signature and the runner's lag while the stub burns the cores.
# limits: rate steps and pool-size steps against the same stub (fixed mode), for the largest load
# the kit holds on this machine.
stub_row() { # summary.json → one row
  jq -r 'def r(x): if x == null then "-" else (x * 100 | round / 100 | tostring) end;
    "| \(.gateway.version // "-") | \(.config.rate_per_s // .config.rate // "-") | \(.config.initial_policies) | "
    + "\(.verdict) | \(.scenarios.outstanding) | \(.reloads.policy_fetches) | "
    + "\(r(.reloads.last_fetch_after_last_add_s)) | \(r(.scheduler.lag_p50_ms)) | "
    + "\(r(.scheduler.lag_p99_ms)) | \(.scheduler.late_starts) of \(.scenarios.started) | "
    + "\(r(.latency_ms.p50)) | \(r(.latency_ms.p99)) |"' "$1" | tee -a "$report"
}
stub_header() {
  emit "| gateway | rate /s | policies | verdict | outstanding | fetches | last fetch − last add s | lag p50 ms | lag p99 ms | late (>10 ms) | latency p50 ms | latency p99 ms |"
  emit "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
}
stub_run() { # name mode policies rate duration backoff
  start_mock "$3" "$1"; start_stub 1s 200 "$1" "$2"
  "$bin" run --gateway "$stub_url" --dashboard "$mock_url" --redis "$redis_url" --rate "$4" \
    --duration "$5" --trigger notify --backoff "$6" --stall-timeout 30s --wait-ready 60s \
    --out "$out/runs" --label "$1" --quiet >"$out/logs/run-$1.log" 2>&1 || true
  stop_pid "$stub_pid"; stop_pid "$mock_pid"
  [[ -s "$out/runs/$1/latest/summary.json" ]] || die "no summary for $1: see $out/logs/run-$1.log"
  stub_row "$out/runs/$1/latest/summary.json"
}
section_stub() {
  local runs="${BENCH_STUB_RUNS:-5}" mode i
  emit "## The stub's default reload model at the seed load ($runs fresh stacks per mode; 500/s for 5 s, 80,400 policies, notify, seed backoff)"
  emit ""
  stub_header
  for mode in v2.9.4 fixed; do
    for i in $(seq "$runs"); do stub_run "stub-$mode-$i" "$mode" 80400 500 5s seed; done
  done
  emit ""
}
section_limits() {
  local rate policies
  emit "## Limits: the CPU-burning stub (fixed), rate and pool-size steps, 5 s each, fine backoff"
  emit ""
  stub_header
  for rate in ${BENCH_LIMIT_RATES:-500 1000 1500 2000}; do
    stub_run "limit-rate-$rate" fixed 80400 "$rate" 5s fine
  done
  for policies in ${BENCH_LIMIT_POLICIES:-200000 400000}; do
    stub_run "limit-pool-$policies" fixed "$policies" 500 5s fine
  done
  emit ""
}

# ---- fan-out: N gateways fetching the 10 MB list at once ----------------------------------------
# A fresh mock at 82,905 policies per N; N curl processes each fetch /system/policies back to
# back on one keep-alive connection with their own x-tyk-nodeid (N gateways reloading without
# pause: the worst case), while curl loops add policies at BENCH_FANOUT_ADD_RATE per second
# (curl --rate, see fanout_adds). Everything runs for BENCH_FANOUT_DURATION seconds under `timeout`; `stdbuf -oL`
# keeps curl's per-transfer -w lines when it is stopped (an in-flight transfer is not counted).
fanout_loop() { # url node seconds outfile timefile
  local args=() i
  for ((i = 0; i < 400 * $3; i++)); do args+=(-o /dev/null "$1"); done
  /usr/bin/time -f '%U %S' -o "$5" timeout -s TERM "$3" stdbuf -oL curl -sS \
    -H "authorization: $secret" -H "x-tyk-nodeid: $2" \
    -w '%{time_total} %{time_starttransfer} %{size_download} %header{content-length}\n' \
    "${args[@]}" >"$4" 2>/dev/null || true
}
fanout_adds() { # url rate seconds outfile_prefix
  # curl --rate paces one sequential loop (it waits out the period after each start, plus its own
  # ~0.7 ms per transfer), and --parallel ignores --rate: so BENCH_FANOUT_ADD_LOOPS (10) loops share
  # the rate, which keeps it while an add takes up to loops / rate (20 ms at 500/s). The rate
  # reached is reported.
  local loops="${BENCH_FANOUT_ADD_LOOPS:-10}" args=() i per_min
  per_min=$(($2 * 60 / loops))
  for ((i = 0; i < ($2 * $3) / loops + $2; i++)); do args+=(-o /dev/null "$1"); done
  for ((i = 1; i <= loops; i++)); do
    timeout -s TERM "$3" stdbuf -oL curl -sS --rate "$per_min/m" -X POST -w '%{time_total}\n' \
      "${args[@]}" >"$4-$i.txt" 2>/dev/null &
    load_pids+=("$!")
  done
}
fanout_step() { # nodes seconds add_rate label → one table row; sets fanout_fig[label/N/…]
  local n="$1" d="$2" rate="$3" label="$4" dir="$out/fanout/$4-n$1" i load_pids=() since cpu0 cpu1
  mkdir -p "$dir"
  start_mock 82905 "fanout-$label-$n"
  since=$(($(date +%s%3N) - 1)); cpu0=$(cpu_s "$mock_pid")
  for ((i = 1; i <= n; i++)); do
    fanout_loop "$mock_url/system/policies" "fanout-n$n-node-$i" "$d" "$dir/fetch-$i.txt" \
      "$dir/time-$i.txt" &
    load_pids+=("$!")
  done
  fanout_adds "$mock_url/repro/policies" "$rate" "$d" "$dir/adds"
  for i in "${load_pids[@]}"; do wait "$i" || true; done
  cat "$dir"/adds-*.txt >"$dir/adds.txt"
  cpu1=$(cpu_s "$mock_pid")
  curl -fsS "$mock_url/repro/fetches?since_ms=$since" >"$dir/fetch-log.json" \
    || die "the mock's fetch log did not answer (log: $out/logs/mock-fanout-$label-$n.log)"
  local rss peak
  rss=$(rss_mb "$mock_pid" VmRSS); peak=$(rss_mb "$mock_pid" VmHWM)
  stop_pid "$mock_pid"
  # Completed transfers only (the whole body, as a gateway needs it: size = Content-Length).
  cat "$dir"/fetch-*.txt 2>/dev/null | awk 'NF == 4 && $3 > 0 && $3 == $4' >"$dir/full.txt" || true
  awk '{ print $1 }' "$dir/full.txt" >"$dir/total.txt"
  awk '{ print $2 }' "$dir/full.txt" >"$dir/ttfb.txt"
  local f50 f99 fmax fn t50 t99 a50 a99 amax an mb clients per_node handler
  read -r f50 f99 fmax fn < <(pct_ms "$dir/total.txt")
  read -r t50 t99 _ < <(pct_ms "$dir/ttfb.txt")
  read -r a50 a99 amax an < <(pct_ms "$dir/adds.txt")
  mb=$(awk -v d="$d" '{ s += $3 } END { printf "%.0f", s / d / 1e6 }' "$dir/full.txt")
  clients=0
  if ((n > 0)); then
    clients=$(cat "$dir"/time-*.txt | awk -v d="$d" 'NF == 2 { s += $1 + $2 } END { printf "%.0f", s / d * 100 }')
  fi
  # Fetches per node id as the mock logged them (requests received, authorized, full list).
  per_node=$(jq -r --argjson n "$n" '
    [.[] | select(.authorized and .bytes > 0)] | group_by(.node_id) | map(length) as $c
    | if $n == 0 then "-" elif ($c | length) == 0 then "0"
      else "\($c | length) ids: \($c | min)–\($c | max) (\($c | add))" end' "$dir/fetch-log.json")
  handler=$(jq -r '[.[] | select(.bytes > 0) | .duration_us] | sort
    | if length == 0 then "-" else (.[((length * 0.99) | ceil) - 1] / 1000 * 100 | round / 100 | tostring) end' \
    "$dir/fetch-log.json")
  local mock_pct per_fetch
  mock_pct=$(awk -v a="$cpu1" -v b="$cpu0" -v d="$d" 'BEGIN { printf "%.0f", (a - b) / d * 100 }')
  per_fetch=$(awk -v a="$cpu1" -v b="$cpu0" -v n="$fn" 'BEGIN { if (n > 0) printf "%.2f", (a - b) / n * 1000; else print "-" }')
  [[ $n -gt 0 ]] || { f50=-; f99=-; fmax=-; t50=-; t99=-; mb=-; }
  fanout_fig[$label/$n/a50]=$a50; fanout_fig[$label/$n/a99]=$a99
  fanout_fig[$label/$n/f50]=$f50; fanout_fig[$label/$n/f99]=$f99; fanout_fig[$label/$n/mb]=$mb
  emit "| $n | $label | $per_node | $fn | $mb | $f50 | $f99 | $fmax | $t50 / $t99 | $handler | $an | $a50 | $a99 | $amax | $mock_pct | $per_fetch | $clients | $rss / $peak |"
}
section_fanout() {
  local d="${BENCH_FANOUT_DURATION:-10}" rate="${BENCH_FANOUT_ADD_RATE:-500}" n
  [[ $d =~ ^[1-9][0-9]*$ ]] || die "BENCH_FANOUT_DURATION must be whole seconds (got '$d')"
  [[ $rate =~ ^[1-9][0-9]*$ ]] || die "BENCH_FANOUT_ADD_RATE must be adds per second (got '$rate')"
  for tool in jq stdbuf timeout; do
    command -v "$tool" >/dev/null || die "'$tool' not found: apt-get install -y jq coreutils"
  done
  emit "## Dashboard mock under fan-out: N back-to-back fetch loops at 82,905 policies, adds at $rate/s, ${d} s per N"
  emit ""
  emit "| N | mock | fetches per node id (mock log): min–max (total) | full fetches | MB/s (all nodes) | fetch p50 ms | fetch p99 ms | fetch max ms | TTFB p50 / p99 ms | handler p99 ms | adds | add p50 ms | add p99 ms | add max ms | mock CPU % | mock CPU ms / fetch | clients CPU % | mock RSS MB (now / peak) |"
  emit "|---:|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  local compare="${BENCH_FANOUT_COMPARE:-}" labels=(this) order
  if [[ -n $compare ]]; then
    [[ -x $compare ]] || die "BENCH_FANOUT_COMPARE='$compare' is not an executable reload-repro binary"
    labels=(this compare)
  fi
  declare -gA fanout_fig=()
  local k=0
  for n in ${BENCH_FANOUT_NODES:-0 1 3 10}; do
    [[ $n =~ ^[0-9]+$ ]] || die "BENCH_FANOUT_NODES must list node counts (got '$n')"
    # With a comparison binary, the two mocks alternate which goes first (load drifts).
    order=("${labels[@]}")
    if ((${#labels[@]} == 2 && k++ % 2 == 1)); then order=(compare this); fi
    for label in "${order[@]}"; do
      if [[ $label == compare ]]; then mock_bin="$compare"; else mock_bin="$bin"; fi
      fanout_step "$n" "$d" "$rate" "$label"
    done
  done
  mock_bin=""
  emit ""
  [[ -n $compare ]] || return 0
  emit "Same command, compare ÷ this (> 1: this build is faster; $compare):"
  emit ""
  emit "| N | add p50 | add p99 | fetch p50 | fetch p99 | MB/s this ÷ compare |"
  emit "|---:|---:|---:|---:|---:|---:|"
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
  for n in ${BENCH_FANOUT_NODES:-0 1 3 10}; do
    emit "| $n | $(ratio "${fanout_fig[compare/$n/a50]}" "${fanout_fig[this/$n/a50]}") | $(ratio "${fanout_fig[compare/$n/a99]}" "${fanout_fig[this/$n/a99]}") | $(ratio "${fanout_fig[compare/$n/f50]}" "${fanout_fig[this/$n/f50]}") | $(ratio "${fanout_fig[compare/$n/f99]}" "${fanout_fig[this/$n/f99]}") | $(ratio "${fanout_fig[this/$n/mb]}" "${fanout_fig[compare/$n/mb]}") |"
  done
  emit ""
}

# ---- fleet: one runner against N stub gateways --------------------------------------------------
# N stubs in fixed mode with no reload cost (sleep work, 0 ms, no per-policy cost, 100 ms tick)
# on one Redis and one mock (BENCH_FLEET_POLICIES, default 1,000, so fetches stay cheap), and
# one `run` with N --gateway URLs at BENCH_FLEET_RATE (500) scenarios/s for BENCH_FLEET_DURATION
# (5s): every scenario creates its key on every gateway. The stubs and the mock do almost no work,
# so what grows with N is the runner's own cost (N key-creation loops per scenario); the CPU of
# each part is measured separately (runner: GNU time; mock and stubs: /proc over the run).
fleet_step() { # nodes rate duration policies → one table row
  local n="$1" name="fleet-n$1${stub_nice:+-nice$stub_nice}" i gw=() stub_pids=() mock_cpu0 stubs_cpu0=0 stubs_cpu1=0
  start_mock "$4" "$name"
  for ((i = 1; i <= n; i++)); do
    start_stub 100ms 0 "$name-$i"
    stub_pids+=("$stub_pid"); gw+=(--gateway "$stub_url")
  done
  mock_cpu0=$(cpu_s "$mock_pid")
  for i in "${stub_pids[@]}"; do stubs_cpu0=$(awk -v a="$stubs_cpu0" -v b="$(cpu_s "$i")" 'BEGIN { print a + b }'); done
  local timefile="$out/logs/time-$name.txt" t0 wall
  t0=$(date +%s%N)
  /usr/bin/time -v -o "$timefile" "$bin" run "${gw[@]}" --dashboard "$mock_url" \
    --redis "$redis_url" --rate "$2" --duration "$3" --trigger notify --backoff fine \
    --deadline 60s --stall-timeout 20s --wait-ready 30s \
    --out "$out/runs" --label "$name" --quiet >"$out/logs/run-$name.log" 2>&1 || true
  wall=$(awk -v a="$(date +%s%N)" -v b="$t0" 'BEGIN { printf "%.2f", (a - b) / 1e9 }')
  local mock_cpu
  mock_cpu=$(awk -v a="$(cpu_s "$mock_pid")" -v b="$mock_cpu0" 'BEGIN { printf "%.1f", a - b }')
  for i in "${stub_pids[@]}"; do stubs_cpu1=$(awk -v a="$stubs_cpu1" -v b="$(cpu_s "$i")" 'BEGIN { print a + b }'); done
  for i in "${stub_pids[@]}"; do stop_pid "$i"; done
  stop_pid "$mock_pid"
  local summary="$out/runs/$name/latest/summary.json"
  [[ -s "$summary" ]] || die "the runner wrote no summary for $name: see $out/logs/run-$name.log"
  local user sys rss
  user=$(awk -F': ' '/User time/ { print $2 }' "$timefile")
  sys=$(awk -F': ' '/System time/ { print $2 }' "$timefile")
  rss=$(awk -F': ' '/Maximum resident/ { printf "%.1f", $2 / 1024 }' "$timefile")
  jq -r --argjson n "$n" --arg user "$user" --arg sys "$sys" --arg rss "$rss" --arg wall "$wall" \
    --arg mock "$mock_cpu" \
    --arg stubs "$(awk -v a="$stubs_cpu1" -v b="$stubs_cpu0" 'BEGIN { printf "%.1f", a - b }')" '
    def r(x): if x == null then "-" else (x * 100 | round / 100 | tostring) end;
    (($user | tonumber) + ($sys | tonumber)) as $cpu
    | (.fleet.usable_everywhere // .scenarios.succeeded) as $everywhere
    | "| \($n) | \(.scenarios.scheduled) | \($everywhere) | \(.verdict) | "
      + "\(r(.scheduler.lag_p50_ms)) | \(r(.scheduler.lag_p99_ms)) | \(r(.scheduler.lag_max_ms)) | "
      + "\(.scheduler.late_starts) (\(r(.scheduler.late_starts / ([.scenarios.started, 1] | max) * 100)) %) | "
      + "\(.scheduler.runner_was_bottleneck) | \(r(.latency_ms.p50)) | \(r(.latency_ms.p99)) | "
      + "\(r(.fleet.spread_ms.p99 // null)) | "
      + "\($cpu * 100 | round / 100) | \(($cpu / ([.scenarios.started * $n, 1] | max) * 1e6) | round) | "
      + "\($mock) / \($stubs) | \((($cpu + ($mock | tonumber) + ($stubs | tonumber)) / ($wall | tonumber) * 100) | round) | \($rss) |"' \
    "$summary" | tee -a "$report"
}
section_fleet() {
  local rate="${BENCH_FLEET_RATE:-500}" d="${BENCH_FLEET_DURATION:-5s}" policies="${BENCH_FLEET_POLICIES:-1000}" n
  [[ $rate =~ ^[1-9][0-9]*$ ]] || die "BENCH_FLEET_RATE must be scenarios per second (got '$rate')"
  [[ $policies =~ ^[0-9]+$ ]] || die "BENCH_FLEET_POLICIES must be a policy count (got '$policies')"
  emit "## Runner at fleet load: N stub gateways (fixed, cost 0, tick 100ms${BENCH_FLEET_STUB_NICE:+, stubs at nice $BENCH_FLEET_STUB_NICE}), $rate scenarios/s for $d, mock at $policies policies, notify, backoff fine"
  emit ""
  emit "| N gateways | scheduled | usable everywhere | verdict | lag p50 ms | lag p99 ms | lag max ms | late (>10 ms) | runner_was_bottleneck | latency p50 ms (last gateway) | latency p99 ms | spread p99 ms | runner CPU s | runner CPU µs / scenario / gateway | mock / stubs CPU s | all three, % of one core (over the run's wall time) | runner peak RSS MB |"
  emit "|---:|---:|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  # BENCH_FLEET_STUB_NICE=19 runs the stubs at the lowest CPU priority: the runner (and mock)
  # then get the cores first, so late starts measure the runner's own limit, not the stubs'.
  stub_nice="${BENCH_FLEET_STUB_NICE:-}"
  [[ -z $stub_nice || $stub_nice =~ ^[0-9]+$ ]] || die "BENCH_FLEET_STUB_NICE must be a nice level 0–19 (got '$stub_nice')"
  for n in ${BENCH_FLEET_NODES:-1 2 4 8 12 16}; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_FLEET_NODES must list gateway counts ≥ 1 (got '$n')"
    fleet_step "$n" "$rate" "$d" "$policies"
  done
  stub_nice=""
  emit ""
}

# ---- calibration -------------------------------------------------------------------------------
# Rate 1000/19 per second for 19 s: scenario i starts at 19·i ms (mod 1 s), so the 1,000 starts
# fall on every millisecond of the tick period exactly once and the mean tick wait is 0.5 s
# without sampling noise (random phases would leave ±9 ms of standard error at n = 1,000).
section_calib() {
  emit "## Calibration: stub fixed, tick 1 s, reload cost 300 ms; runner polls every 10 ms"
  emit ""
  start_mock 1000 calib; start_stub 1s 300 calib
  local name=calib
  /usr/bin/time -v -o "$out/logs/time-$name.txt" "$bin" run --gateway "$stub_url" \
    --dashboard "$mock_url" --redis "$redis_url" --rate 52.631578947368421 --duration 19s \
    --trigger notify --backoff initial=10ms,multiplier=1,jitter=0,max=10ms --deadline 60s \
    --out "$out/runs" --label "$name" --quiet >"$out/logs/run-$name.log" 2>&1 || true
  stop_pid "$stub_pid"; stop_pid "$mock_pid"
  local dir="$out/runs/$name/latest"
  [[ -s "$dir/summary.json" ]] || die "the runner wrote no summary for $name: see $out/logs/run-$name.log"
  # Reload timing: the mock's fetch log (request received: the tick, plus a connect) against the
  # stub's "Policies found" line, which it logs once the fetched set is visible, i.e. after the
  # fetch, the parse and the programmed cost. The first such line is the startup load.
  local found fetch_ms
  found="$(grep 'Policies found' "$out/logs/stub-calib.log" | tail -n +2 | awk '{ print $1 }')"
  # Unix ms of each log timestamp, to the microsecond.
  to_ms() { while read -r ts; do
      printf '%s %s\n' "$(date -d "$ts" +%s)" "${ts#*.}"; done |
      awk '{ sub(/Z$/, "", $2); printf "%.3f\n", $1 * 1000 + ("0." $2) * 1000 }'; }
  jq -r '.[].received_at_ms' "$dir/fetches.json" >"$out/calib-fetch-start.txt"
  to_ms <<<"$found" >"$out/calib-found.txt"
  # Each "found" pairs with the latest fetch the mock received before it.
  fetch_ms=$(awk 'NR == FNR { start[++ns] = $1; next }
    { best = 0; for (i = 1; i <= ns; i++) if (start[i] <= $1) best = start[i]
      if (best > 0 && $1 - best < 2000) { s += $1 - best; n++ } }
    END { printf "%.2f", n ? s / n : 0 }' "$out/calib-fetch-start.txt" "$out/calib-found.txt")
  jq -rs --arg fetch "$fetch_ms" '
    map(select(.outcome == "success")) as $ok
    | ($ok | length) as $n
    | ($ok | map(.success_ms) | sort) as $lat
    | ($ok | map(.add_done_ms) | add / $n) as $add
    | ($ok | map(select(.attempts > 2) | (.success_ms - .last_failure_ms))) as $last
    | ($last | add / length) as $poll
    | ($lat | add / $n) as $mean
    | ($lat[($n / 2 | floor)]) as $p50
    | ($add + 500 + ($fetch | tonumber) + $poll / 2) as $pred
    | def f: . * 100 | round / 100;
    "| scenarios measured | \($n) |",
    "| add (policy in the pool, trigger published), mean ms | \($add | f) |",
    "| tick wait, mean ms (uniform over the period) | 500 |",
    "| reload: fetch received → set visible (300 ms cost + fetch + parse), mean ms | \($fetch) |",
    "| poll period, mean ms (last failure → success) | \($poll | f) → half: \($poll / 2 | f) |",
    "| **predicted mean ms** | **\($pred | f)** |",
    "| **measured mean ms** / p50 | **\($mean | f)** / \($p50 | f) |",
    "| difference, ms (%) | \(($mean - $pred) | f) (\((($mean - $pred) / $pred * 100) | f) %) |"
  ' "$dir/scenarios.jsonl" >"$out/calib.md"
  emit "| term | value |"
  emit "|---|---:|"
  tee -a "$report" <"$out/calib.md"
  emit ""
}

for s in $sections; do
  case "$s" in
    mock) section_mock ;;
    compress) section_compress ;;
    micro) section_micro ;;
    runner) section_runner ;;
    large) section_large ;;
    calib) section_calib ;;
    fanout) section_fanout ;;
    fleet) section_fleet ;;
    stub) section_stub ;;
    limits) section_limits ;;
    *) die "unknown section '$s' in BENCH_SECTIONS (mock compress micro runner large calib fanout fleet stub limits)" ;;
  esac
done
rm -f "$out/body-82905.json"
emit "Raw data: $out"
