# reload-repro: reproduce and measure Tyk Gateway reload hangs under Docker Compose.
# The logic lives in scripts/ (bash, every step bounded by a timeout); this file only names it.
# `make` alone prints the help.

SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

# ---- knobs (pass on the command line: make repro TYK=2.9.4 RATE=300) ---------------------------
## Gateway under test: a version (2.9.4 → tykio/tyk-gateway:v2.9.4) or `pr` (→ $$TYK_PR_IMAGE).
## A full image reference goes in TYK_IMAGE=, not TYK=.
TYK ?=
## Image of a PR build (build your Tyk branch with Tyk's Dockerfile and tag it so).
TYK_PR_IMAGE ?= tyk-gateway:pr
## Explicit gateway image; beats TYK.
TYK_IMAGE ?= $(if $(filter pr,$(TYK)),$(TYK_PR_IMAGE),$(if $(TYK),tykio/tyk-gateway:v$(TYK:v%=%)))
## Results label (folder under results/); default: the TYK value.
LABEL ?= $(TYK)
## The kit's image.
REPRO_IMAGE ?= reload-repro:local
## Deadline for the selftest runs (a bound only: the stall timeout ends the v2.9.4 run first).
SELFTEST_DEADLINE ?= 30s
## Policies served before the load: the seed's 80,400, so the stub's reload costs what a real one does.
SELFTEST_INITIAL_POLICIES ?= 80400
## Load duration of the selftest runs (pinned: the v2.9.4 run's certainty depends on it, see below).
SELFTEST_DURATION ?= 5s
## Stub reload cost, the SAME in both runs: fixed part (ms) and per policy (µs); the stub's defaults.
SELFTEST_RELOAD_COST_MS ?= 200
SELFTEST_PER_POLICY_COST_US ?= 22
## Verdict(s) that count as success of `make repro`, comma-separated (default pass).
EXPECT ?=
## Where results go (default results/).
RESULTS_DIR ?=
## Gateway containers on the one Redis and mock (1 to 64, default 1): make repro TYK=2.9.4 GATEWAYS=3.
## Each is addressed directly and has its own evidence: gateway-N.log.gz, stats, reload timeline.
GATEWAYS ?=
# Runner knobs, passed through the environment when set: RATE DURATION TRIGGER DEADLINE
# INITIAL_POLICIES WAIT_READY BACKOFF STALL_TIMEOUT RUNS KEEP STUB_RELOAD_COST_MS STUB_PER_POLICY_COST_US
# STUB_SWAP_SHARE STUB_RELOAD_WORK STUB_NO_POLICY_LOG (the stub gateway, docker-compose.stub.yml) RESULTS_DIR.
# The binary checks them (`reload-repro set begin`); an empty value means the default.
export RATE DURATION TRIGGER DEADLINE INITIAL_POLICIES WAIT_READY BACKOFF STALL_TIMEOUT RUNS KEEP
export STUB_RELOAD_COST_MS STUB_PER_POLICY_COST_US STUB_SWAP_SHARE STUB_RELOAD_WORK STUB_NO_POLICY_LOG
export RESULTS_DIR EXPECT GATEWAYS
# `make diff` knobs: FORCE=1, MIN_EFFECT (percent), ALPHA, OUT.
export FORCE MIN_EFFECT ALPHA OUT
export REPRO_IMAGE

DOCKER ?= docker
COMPOSE := $(shell if $(DOCKER) compose version >/dev/null 2>&1; then echo "$(DOCKER) compose"; \
             else echo docker-compose; fi)
RESULTS = $(or $(RESULTS_DIR),results)
LAST_KEPT_PROJECT = $(shell cat $(RESULTS)/.last-kept-project 2>/dev/null)
# Compose projects of this checkout are named reload-repro-<CHECKOUT_ID>-… (scripts/repro.sh).
CHECKOUT_ID := $(shell printf '%s' "$(CURDIR)" | sha256sum | cut -c1-8)

.PHONY: help repro selftest image kit-image images-offline down logs test test-all diff bench k8s

help: ## Show this help.
	@echo "reload-repro: reproduce Tyk Gateway reload hangs and compare two gateway builds."
	@echo
	@echo "  make repro TYK=2.9.4          run against tykio/tyk-gateway:v2.9.4"
	@echo "  make repro TYK=pr             run against \$$TYK_PR_IMAGE (default tyk-gateway:pr)"
	@echo "  make diff A=2.9.4 B=pr        compare results/2.9.4 with results/pr"
	@echo
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) \
	  | sed -E 's/^([a-z0-9-]+):.*## (.*)/\1\t\2/' | awk -F'\t' '{ printf "  %-16s %s\n", $$1, $$2 }'
	@echo
	@echo "Knobs: TYK TYK_IMAGE TYK_PR_IMAGE LABEL RATE DURATION TRIGGER DEADLINE"
	@echo "       INITIAL_POLICIES WAIT_READY BACKOFF STALL_TIMEOUT RUNS KEEP=1 (leave the stack up)"
	@echo "       GATEWAYS=N (gateway containers on one Redis and mock, default 1; one result and"
	@echo "       gateway-<i>.log.gz per gateway in the run directory) RESULTS_DIR (default results)"
	@echo "       EXPECT (verdicts that count as success, default pass)"
	@echo "       diff: FORCE=1 MIN_EFFECT=<percent> ALPHA=<level> OUT=<dir>"
	@echo "Results: results/<label>/<UTC time>/ per run, results/<label>/set-<UTC time>/set.json per"
	@echo "call (results/<label>/latest, latest-set); make diff compares the latest set of each label."
	@echo "Exit status: make returns 0 on success and 2 on any failure (GNU make cannot pass codes"
	@echo "through). scripts/repro.sh returns 0 as expected, 1 gateway failure (hang, unresponsive),"
	@echo "2 kit could not measure, 130/143 interrupted; scripts/diff.sh 0 improved/no change,"
	@echo "1 regressed, 3 inconclusive, 2 error. CI calls the scripts."

repro: ## Run the stack against a gateway image (TYK=<version>|pr or TYK_IMAGE=…), RUNS times.
	@if [[ "$(TYK)" == */* || "$(TYK)" == *:* ]]; then \
	  echo "make repro: TYK=$(TYK) looks like an image reference: use TYK_IMAGE=$(TYK)" >&2; exit 2; fi
	@if [[ -z "$(TYK_IMAGE)" ]]; then \
	  echo "make repro: say which gateway, e.g. 'make repro TYK=2.9.4', 'make repro TYK=pr'" \
	       "or 'make repro TYK_IMAGE=my/image:tag'" >&2; exit 2; fi
	@$(MAKE) --no-print-directory kit-image
	scripts/repro.sh --image "$(TYK_IMAGE)" $(if $(LABEL),--label "$(LABEL)")

kit-image: ## Build the kit image from source unless it exists (make repro does this first).
	@if ! $(DOCKER) image inspect $(REPRO_IMAGE) >/dev/null 2>&1; then \
	  echo "kit image $(REPRO_IMAGE) missing: building it from source (first use, a few minutes)"; \
	  $(DOCKER) build -t $(REPRO_IMAGE) . || { echo "make: the kit image could not be built" \
	    "from source (no registry for the rust and debian images?): see README, 'Offline" \
	    "machines' (make images-offline)" >&2; exit 2; }; fi

# Both runs use one stub reload cost (SELFTEST_RELOAD_COST_MS + SELFTEST_PER_POLICY_COST_US per
# policy, CPU-burning: ~2.0 s per reload at 80,400 policies, as the real v2.9.4 and fix took on 2
# busy cores), so the selftest tells the fix from the bug, not a fast gateway from a slow one.
# Why the v2.9.4 run always hangs: a reload longer than the 1 s tick ends with a tick waiting, so
# the next trigger (2 ms later at 500/s) starts the next reload at once; reloads run back to back,
# fetching ~0, 2.0 and 4.0 s into the 5 s load. Every trigger after the last fetch is "already
# queued" and nothing triggers after the last add: the last ~1 s of adds (~500 policies) is lost.
# The only escape is a reload ending in the ~2 ms before the last add; with 2.0 s reloads the
# ends fall ~1 s away from it, so only a 25 % error in two reloads could bring one there. The
# fixed run queues those triggers for the next tick and passes. `fine` backoff (retries up to 1 s
# apart) and a 10 s stall timeout end both runs in well under a minute.
SELFTEST_ENV = DURATION=$(SELFTEST_DURATION) DEADLINE=$(SELFTEST_DEADLINE) \
  INITIAL_POLICIES=$(SELFTEST_INITIAL_POLICIES) BACKOFF=fine STALL_TIMEOUT=10s RATE=500 TRIGGER=notify \
  STUB_RELOAD_COST_MS=$(SELFTEST_RELOAD_COST_MS) STUB_PER_POLICY_COST_US=$(SELFTEST_PER_POLICY_COST_US) \
  STUB_RELOAD_WORK=busy
SELFTEST_COST = $(SELFTEST_RELOAD_COST_MS) ms + $(SELFTEST_PER_POLICY_COST_US) µs/policy \
  (~$$(( ($(SELFTEST_RELOAD_COST_MS) * 1000 + $(SELFTEST_PER_POLICY_COST_US) * $(SELFTEST_INITIAL_POLICIES)) / 1000 )) ms \
  per reload at $(SELFTEST_INITIAL_POLICIES) policies, CPU-burning)

selftest: ## Offline proof: the stub gateway in v2.9.4 mode must hang, in fixed mode pass, at one reload cost.
	@echo "selftest: both modes at the same stub reload cost: $(SELFTEST_COST)"
	$(SELFTEST_ENV) scripts/repro.sh --stub v2.9.4 --expect hang
	$(SELFTEST_ENV) scripts/repro.sh --stub fixed --expect pass
	@echo "selftest: passed — v2.9.4 hung and fixed passed at the same reload cost: $(SELFTEST_COST)"

image: ## Build the kit image from source (needs Docker Hub's rust and debian images).
	$(DOCKER) build -t $(REPRO_IMAGE) .

images-offline: ## Without a registry: build debian, redis and the kit image from the host.
	scripts/offline-images.sh

down: ## Take down this checkout's reload-repro stacks still around (e.g. after KEEP=1).
	@projects="$$($(DOCKER) ps -a --filter label=com.docker.compose.project \
	  --format '{{.Label "com.docker.compose.project"}}' | grep '^reload-repro-$(CHECKOUT_ID)-' | sort -u)"; \
	for p in $$projects; do echo "down: $$p"; \
	  TYK_IMAGE=unused COMPOSE_PROFILES=runner timeout 120 $(COMPOSE) -p "$$p" \
	    -f docker-compose.yml -f docker-compose.stub.yml down -v --remove-orphans -t 5; done; \
	[[ -n "$$projects" ]] || echo "down: no stack of this checkout is running"

logs: ## Logs of the last stack kept with KEEP=1; P=<project> picks another.
	@p="$(or $(P),$(LAST_KEPT_PROJECT))"; [[ -n "$$p" ]] || { echo "logs: no stack was kept" \
	  "(run with KEEP=1); a finished run's logs are in $(RESULTS)/<label>/latest/*.log" >&2; exit 2; }; \
	TYK_IMAGE=unused COMPOSE_PROFILES=runner timeout 60 $(COMPOSE) -p "$$p" \
	  -f docker-compose.yml -f docker-compose.stub.yml logs --no-color --tail=200

## `make test` runs the gated tests too with RUN_IGNORED=all (what .ci/run does; `make test-all`).
RUN_IGNORED ?=
test: ## The test suite; tests needing Docker, root or Chromium report skipped (RUN_IGNORED=all: run them).
	cargo nextest run --workspace --all-targets $(if $(RUN_IGNORED),--run-ignored $(RUN_IGNORED))

test-all: ## Every test, the Docker/compose/workflow, root-only and browser ones too (what .ci/run runs).
	@$(MAKE) --no-print-directory test RUN_IGNORED=all

diff: ## Compare the latest set of two labels: make diff A=2.9.4 B=pr (FORCE=1 MIN_EFFECT ALPHA).
	@[[ -n "$(A)" && -n "$(B)" ]] || { echo "make diff: set A and B, e.g. A=2.9.4 B=pr" >&2; exit 2; }
	scripts/diff.sh "$(A)" "$(B)"

bench: ## Micro-benchmarks (scripts/bench.sh when present).
	@if [[ -x scripts/bench.sh ]]; then scripts/bench.sh; \
	else echo "bench: scripts/bench.sh not written yet; 'cargo bench' runs what exists"; fi

# `make k8s` renders with the checkout's binary (cargo); REPRO_BIN=<path> uses another one.
k8s: ## Kubernetes manifests from the compose file: results/k8s/reload-repro.yaml (GATEWAYS SHARDS NAMESPACE TYK STUB=1).
	@if [[ -z "$(STUB)" && -z "$(TYK_IMAGE)" ]]; then \
	  echo "make k8s: say which gateway (TYK=5.3.0 or TYK_IMAGE=…), or STUB=1 for the kit's stub" >&2; exit 2; fi
	TYK_IMAGE="$(TYK_IMAGE)" $(or $(REPRO_BIN),cargo run --quiet --) manifests $(if $(STUB),--stub) \
	  --gateways $(or $(GATEWAYS),1) --shards $(or $(SHARDS),1) --namespace $(or $(NAMESPACE),reload-repro) \
	  --output $(RESULTS)/k8s/reload-repro.yaml
