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
## Policies served before the load (the selftest uses fewer: the stub simulates the reload cost).
SELFTEST_INITIAL_POLICIES ?= 2000
## Load duration of the selftest runs (pinned: the v2.9.4 run's certainty depends on it).
SELFTEST_DURATION ?= 5s
## Stub reload cost in the v2.9.4 run: must exceed SELFTEST_DURATION by the 1 s tick (see below).
SELFTEST_HANG_COST_MS ?= 6000
## Stub reload cost in the fixed run: modest, so every scenario gets its key within seconds.
SELFTEST_PASS_COST_MS ?= 300
## Verdict(s) that count as success of `make repro`, comma-separated (default pass).
EXPECT ?=
## Where results go (default results/).
RESULTS_DIR ?=
# Runner knobs, passed through the environment when set: RATE DURATION TRIGGER DEADLINE
# INITIAL_POLICIES WAIT_READY BACKOFF STALL_TIMEOUT RUNS KEEP STUB_RELOAD_COST_MS RESULTS_DIR.
# The binary checks them (`reload-repro set begin`); an empty value means the default.
export RATE DURATION TRIGGER DEADLINE INITIAL_POLICIES WAIT_READY BACKOFF STALL_TIMEOUT RUNS KEEP
export STUB_RELOAD_COST_MS RESULTS_DIR EXPECT
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

.PHONY: help repro selftest image kit-image images-offline down logs test test-all diff bench

help: ## Show this help.
	@echo "reload-repro: reproduce Tyk Gateway reload hangs and compare two gateway builds."
	@echo
	@echo "  make repro TYK=2.9.4          run against tykio/tyk-gateway:v2.9.4"
	@echo "  make repro TYK=pr             run against \$$TYK_PR_IMAGE (default tyk-gateway:pr)"
	@echo "  make diff A=2.9.4 B=pr        compare results/2.9.4 with results/pr"
	@echo
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) \
	  | sed -E 's/^([a-z-]+):.*## (.*)/\1\t\2/' | awk -F'\t' '{ printf "  %-16s %s\n", $$1, $$2 }'
	@echo
	@echo "Knobs: TYK TYK_IMAGE TYK_PR_IMAGE LABEL RATE DURATION TRIGGER DEADLINE"
	@echo "       INITIAL_POLICIES WAIT_READY BACKOFF STALL_TIMEOUT RUNS KEEP=1 (leave the stack up)"
	@echo "       RESULTS_DIR (default results)"
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

# Why the v2.9.4 run always hangs: the stub's first reload starts at its next 1 s tick (<= 1 s
# into the load), fetches the policies at its start and then takes SELFTEST_HANG_COST_MS, longer
# than the whole load. Every trigger during it is only "already queued" (counted as served), and
# nothing triggers after the last add, so every policy added after that one fetch is lost: certain,
# not a race. The fixed run queues those triggers for the next tick, so it passes. `fine` backoff
# (retries up to 1 s apart) and a 10 s stall timeout end both runs in well under a minute.
SELFTEST_ENV = DURATION=$(SELFTEST_DURATION) DEADLINE=$(SELFTEST_DEADLINE) \
  INITIAL_POLICIES=$(SELFTEST_INITIAL_POLICIES) BACKOFF=fine STALL_TIMEOUT=10s RATE=500 TRIGGER=notify

selftest: ## Offline proof: the stub gateway in v2.9.4 mode must hang, in fixed mode pass.
	$(SELFTEST_ENV) STUB_RELOAD_COST_MS=$(SELFTEST_HANG_COST_MS) \
	  scripts/repro.sh --stub v2.9.4 --expect hang
	$(SELFTEST_ENV) STUB_RELOAD_COST_MS=$(SELFTEST_PASS_COST_MS) \
	  scripts/repro.sh --stub fixed --expect pass

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

test: ## The test suite; tests needing Docker or root are reported as skipped (see test-all).
	cargo nextest run --workspace --all-targets

test-all: ## Every test, the Docker/compose/workflow and root-only ones too (what .ci/run runs).
	cargo nextest run --workspace --all-targets --run-ignored all

diff: ## Compare the latest set of two labels: make diff A=2.9.4 B=pr (FORCE=1 MIN_EFFECT ALPHA).
	@[[ -n "$(A)" && -n "$(B)" ]] || { echo "make diff: set A and B, e.g. A=2.9.4 B=pr" >&2; exit 2; }
	scripts/diff.sh "$(A)" "$(B)"

bench: ## Micro-benchmarks (scripts/bench.sh when present).
	@if [[ -x scripts/bench.sh ]]; then scripts/bench.sh; \
	else echo "bench: scripts/bench.sh not written yet; 'cargo bench' runs what exists"; fi
