# reload-repro image: the dashboard mock, the runner and the stub gateway in one small,
# non-root runtime image.
#
# Two ways to fill it, one runtime stage:
#   From source (users; needs Docker Hub's rust and debian images):
#       docker build -t reload-repro:local .                         (or: make image)
#   From a binary built on the host (offline machines, CI without a registry):
#       ctx=$(mktemp -d) && cp target/release/reload-repro "$ctx"/
#       docker build --target runtime-prebuilt -f Dockerfile -t reload-repro:local "$ctx"
#     (scripts/offline-images.sh does exactly this.) The context is a folder holding only the
#     binary: the source tree's .dockerignore keeps target/ out, and a tiny context builds fast.
#
# Stage order matters: the legacy builder (DOCKER_BUILDKIT=0) builds every stage up to the target,
# so `runtime-prebuilt` comes before `builder` and never needs the Rust image. The default target
# is the last stage, `runtime`, built from source. BuildKit skips the stages a target does not use.
# The host binary must be built against glibc <= bookworm's (2.36): build it on bookworm.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- runtime-base: what every variant of the runtime shares --------------------------------
FROM ${RUNTIME_IMAGE} AS runtime-base
# curl: compose healthchecks (`curl -fsS http://127.0.0.1:9000/health`). ca-certificates: harmless,
# keeps curl usable against https targets a user may point it at.
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 repro \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin repro \
 && mkdir -p /results && chown 10001:10001 /results
WORKDIR /results
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/reload-repro"]
CMD ["--help"]

# ---- runtime-prebuilt: the runtime with a binary built on the host (offline path) ----------
FROM runtime-base AS runtime-prebuilt
# The wildcard lets the legacy builder pass this stage when the source tree is the context (it
# builds every stage, and the tree has no binary at its root); the check below keeps an image
# without a binary from ever being produced when this stage is the target.
COPY --chown=0:0 reload-repr[o] Cargo.tom[l] /opt/prebuilt/
USER 0
RUN if [ -f /opt/prebuilt/reload-repro ]; then \
      install -m 0755 /opt/prebuilt/reload-repro /usr/local/bin/reload-repro; \
    elif [ ! -f /opt/prebuilt/Cargo.toml ]; then \
      echo "runtime-prebuilt: the build context has no reload-repro binary" \
           "(see the top of this Dockerfile)" >&2; exit 1; \
    fi \
 && rm -rf /opt/prebuilt
USER 10001:10001

# ---- builder: compile from source (users' path) ------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# One plain build: a dependency-caching dummy build breaks as soon as the manifest names extra
# targets (benches, tests), and cache mounts would make the legacy builder reject the file.
COPY . .
RUN cargo build --release --locked \
 && install -m 0755 target/release/reload-repro /usr/local/bin/reload-repro

# ---- runtime: the default target ----------------------------------------------------------
FROM runtime-base AS runtime
COPY --from=builder /usr/local/bin/reload-repro /usr/local/bin/reload-repro
