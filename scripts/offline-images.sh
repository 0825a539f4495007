#!/usr/bin/env bash
# Prepares, without any container registry, every image the kit's Dockerfile and compose file name:
#   debian:bookworm-slim      (debootstrap --variant=minbase + docker import)
#   redis:7.0.15-bookworm     (Debian's redis-server installed on that base)
#   reload-repro:local        (the host-built binary packaged into the Dockerfile's runtime stage)
# Idempotent: an image that already exists is left alone (the kit image is rebuilt only when the
# binary changed). Users with Docker Hub never need this: `make image` builds from source.
#
# Env: DOCKER (client, default /usr/bin/docker when present), REDIS_IMAGE, BASE_IMAGE, KIT_IMAGE,
#      DEBIAN_MIRROR, CARGO_TARGET_DIR, SKIP_CARGO_BUILD=1 (package the binary as is),
#      REPRO_CARGO_PROFILE (release; `dev` packages a debug build: quicker to compile where the
#      tests build one anyway), FORCE=1 (rebuild all three).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${DOCKER:-}" ]]; then
  if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
BASE_IMAGE="${BASE_IMAGE:-debian:bookworm-slim}"
REDIS_IMAGE="${REDIS_IMAGE:-redis:7.0.15-bookworm}"
KIT_IMAGE="${KIT_IMAGE:-reload-repro:local}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
FORCE="${FORCE:-0}"

log() { printf 'offline-images: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
ROOTFS_TO_REMOVE="" CONTEXT_TO_REMOVE=""
cleanup() {
  if [[ -n "$ROOTFS_TO_REMOVE" ]]; then rm -rf "$ROOTFS_TO_REMOVE"; fi
  if [[ -n "$CONTEXT_TO_REMOVE" ]]; then rm -rf "$CONTEXT_TO_REMOVE"; fi
}
trap cleanup EXIT
have_image() { [[ "$FORCE" != 1 ]] && "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# A registry that answers is always preferred; offline, `pull` fails fast, and the timeout covers
# the case where it hangs instead.
try_pull() {
  log "trying: docker pull $1 (60 s)"
  timeout 60 "$DOCKER" pull -q "$1" >/dev/null 2>&1
}

timeout 20 "$DOCKER" info >/dev/null 2>&1 \
  || die "no Docker daemon answers ($DOCKER info failed): start dockerd (see .ci/run) and retry"

ensure_base() {
  if have_image "$BASE_IMAGE"; then log "$BASE_IMAGE present"; return; fi
  if [[ "$FORCE" != 1 ]] && try_pull "$BASE_IMAGE"; then log "pulled $BASE_IMAGE"; return; fi
  command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install -y debootstrap"
  [[ "$(id -u)" == 0 ]] || die "debootstrap needs root to build $BASE_IMAGE: run as root"
  local rootfs started
  rootfs="$(mktemp -d /tmp/reload-repro-rootfs.XXXXXX)"
  # The rootfs holds device nodes and root-owned files: remove it whatever happens.
  ROOTFS_TO_REMOVE="$rootfs"
  started=$SECONDS
  log "building $BASE_IMAGE: debootstrap --variant=minbase bookworm from $DEBIAN_MIRROR (~1 min)"
  timeout 900 debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" \
    >/tmp/reload-repro-debootstrap.log 2>&1 \
    || die "debootstrap failed (log: /tmp/reload-repro-debootstrap.log)"
  # Slim like the official image: apt keeps no caches and dpkg installs no docs in later layers
  # (the same settings the official slim image ships), and none are left in this one.
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/locale/*' \
    >"$rootfs/etc/dpkg/dpkg.cfg.d/docker"
  rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  tar -C "$rootfs" -c . | timeout 300 "$DOCKER" import \
    --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  ROOTFS_TO_REMOVE=""
  log "built $BASE_IMAGE in $((SECONDS - started)) s"
}

ensure_redis() {
  if have_image "$REDIS_IMAGE"; then log "$REDIS_IMAGE present"; return; fi
  if [[ "$FORCE" != 1 ]] && try_pull "$REDIS_IMAGE"; then log "pulled $REDIS_IMAGE"; return; fi
  local started=$SECONDS
  log "building $REDIS_IMAGE from $BASE_IMAGE with Debian's redis-server"
  # No context: the Dockerfile comes on stdin. Behaves like the official image where the kit
  # relies on it: redis-server on 6379 reachable from other containers, redis-cli for healthchecks,
  # non-root, data in /data.
  timeout 600 "$DOCKER" build -q -t "$REDIS_IMAGE" - >/dev/null <<DOCKERFILE
FROM $BASE_IMAGE
RUN apt-get update \\
 && apt-get install -y --no-install-recommends redis-server \\
 && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /data && chown redis:redis /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no", "--bind", "0.0.0.0"]
DOCKERFILE
  log "built $REDIS_IMAGE in $((SECONDS - started)) s"
}

ensure_kit() {
  local target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
  local profile="${REPRO_CARGO_PROFILE:-release}" profile_dir
  # Cargo names the dev profile's folder `debug`; every other profile's folder is its name.
  if [[ "$profile" == dev ]]; then profile_dir=debug; else profile_dir="$profile"; fi
  local binary="$target_dir/$profile_dir/reload-repro"
  if [[ "${SKIP_CARGO_BUILD:-0}" != 1 ]]; then
    log "cargo build --profile $profile --locked --bin reload-repro (target dir $target_dir)"
    (cd "$repo_root" && CARGO_TARGET_DIR="$target_dir" \
      timeout 1800 cargo build --profile "$profile" --locked --bin reload-repro)
  fi
  [[ -x "$binary" ]] || die "no binary at $binary: run cargo build --release (or unset SKIP_CARGO_BUILD)"
  local sum current
  sum="$(sha256sum "$binary" | cut -d' ' -f1)"
  current="$("$DOCKER" image inspect -f '{{ index .Config.Labels "org.reload-repro.binary-sha256" }}' \
    "$KIT_IMAGE" 2>/dev/null || true)"
  if [[ "$FORCE" != 1 && "$current" == "$sum" ]]; then
    log "$KIT_IMAGE present and holds this binary (${sum:0:12})"; return
  fi
  # A dedicated context holding only the binary: the source tree's .dockerignore keeps target/ out,
  # and a one-file context is sent to the daemon in no time.
  local context
  context="$(mktemp -d /tmp/reload-repro-context.XXXXXX)"
  CONTEXT_TO_REMOVE="$context"
  cp "$binary" "$context/reload-repro"
  local started=$SECONDS
  log "packaging $binary into $KIT_IMAGE (Dockerfile target runtime-prebuilt)"
  timeout 600 "$DOCKER" build -q --target runtime-prebuilt \
    --label "org.reload-repro.binary-sha256=$sum" \
    -f "$repo_root/Dockerfile" -t "$KIT_IMAGE" "$context" >/dev/null
  rm -rf "$context"
  CONTEXT_TO_REMOVE=""
  log "built $KIT_IMAGE in $((SECONDS - started)) s"
}

ensure_base
ensure_redis
ensure_kit
"$DOCKER" image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' \
  | grep -E "^(${BASE_IMAGE}|${REDIS_IMAGE}|${KIT_IMAGE})\b" >&2 || true
