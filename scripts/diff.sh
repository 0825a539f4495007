#!/usr/bin/env bash
# Compares two sides with `reload-repro diff`, in the kit image (no network), and passes its exit
# status through (`make diff` calls this; CI calls it directly, because make turns every failure
# into exit status 2):
#
#   scripts/diff.sh 2.9.4 pr                       labels: the latest set of each
#   scripts/diff.sh results/pr/set-20261201T101500Z results/pr/20261201T101700Z
#
# A side is a label (a folder under RESULTS_DIR: its latest set, i.e. the last `make repro`
# call) or a path to a set directory, a run directory or a summary.json. The report is written
# to OUT (default RESULTS_DIR/diff-A-vs-B): diff.md, diff.json, latency-cdf.svg.
#
# Knobs (environment): RESULTS_DIR (default ./results), FORCE=1 (compare sides whose configs or
# builds differ, with a warning), MIN_EFFECT (percent, default 10), ALPHA (default 0.05),
# OUT, REPRO_IMAGE.
#
# Exit status: 0 improved or no change, 1 regressed, 3 inconclusive, 2 error.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
log() { printf 'diff: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }
[[ $# == 2 ]] || { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

DOCKER="${DOCKER:-docker}"
REPRO_IMAGE="${REPRO_IMAGE:-reload-repro:local}"
timeout 20 "$DOCKER" image inspect "$REPRO_IMAGE" >/dev/null 2>&1 \
  || die "kit image $REPRO_IMAGE not found: run 'make image' (from source) or 'make images-offline'"
results_dir="${RESULTS_DIR:-results}"
[[ "$results_dir" == /* ]] || results_dir="$repo_root/$results_dir"

# side NAME: a label under the results folder, or a path (absolute from here on).
side() {
  local arg="$1" path
  if [[ "$arg" == */* || "$arg" == .* ]]; then
    path="$(cd "$(dirname "$arg")" 2>/dev/null && pwd)/$(basename "$arg")" || die "$arg: no such path"
  else
    path="$results_dir/$arg"
  fi
  [[ -e "$path" ]] || die "$path: no such label or path (labels are folders under $results_dir)"
  printf '%s' "$path"
}
a="$(side "$1")"
b="$(side "$2")"
# Each side's parent is mounted at its own path (a set lists its runs as ../<run>), read-only.
mounts=(-v "$(dirname "$a"):$(dirname "$a"):ro")
if [[ "$(dirname "$b")" != "$(dirname "$a")" ]]; then mounts+=(-v "$(dirname "$b"):$(dirname "$b"):ro"); fi
name_of() { printf '%s' "$(basename "$1")" | tr -c 'A-Za-z0-9._-' '-'; }
out="${OUT:-$results_dir/diff-$(name_of "$1")-vs-$(name_of "$2")}"
[[ "$out" == /* ]] || out="$repo_root/$out"
mkdir -p "$out" || die "cannot create the report folder $out (OUT)"
[[ -w "$out" ]] || die "the report folder $out (OUT) is not writable by you"

args=(diff "$a" "$b" --out "$out")
if [[ "${FORCE:-0}" == 1 ]]; then args+=(--force); fi
if [[ -n "${MIN_EFFECT:-}" ]]; then args+=(--min-effect "$MIN_EFFECT"); fi
if [[ -n "${ALPHA:-}" ]]; then args+=(--alpha "$ALPHA"); fi

status=0
timeout --kill-after=10 300 "$DOCKER" run --rm --network none --user "$(id -u):$(id -g)" \
  "${mounts[@]}" -v "$out:$out" "$REPRO_IMAGE" "${args[@]}" || status=$?
case "$status" in
  0|1|2|3) ;;
  *) log "reload-repro diff did not run (status $status)"; status=2 ;;
esac
if [[ "$status" != 2 ]]; then log "report: $out/diff.md"; fi
log "exit status $status (0 improved or no change, 1 regressed, 3 inconclusive, 2 error)"
exit "$status"
