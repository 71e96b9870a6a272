# sparkwing — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help demo build dist package lint-actions test ci lint cycles fmt fuzz s3-start s3-stop s3-env s3-compat bench clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

demo: ## Build the CLI and run the sample pipeline locally (no S3, no server)
	@scripts/demo.sh

build: ## Build the sparkwing CLI (release)
	cargo build --release -p sparkwing-cli

dist: ## Build this machine's release archive and its .sha256 into target/dist/ (cargo's dist-profile folder)
	@scripts/dist.sh

package: ## Package every crate and check that the packaged CLI builds pipelines
	@scripts/package-check.sh

lint-actions: ## Lint action.yml and the GitHub workflows with actionlint
	@scripts/lint-actions.sh

test: ## Run every check and test (starts a local S3 server itself)
	@scripts/test.sh

ci: test ## What .ci/run runs: the same as `make test`

lint: ## cargo fmt --check and clippy -D warnings
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

cycles: ## Fail if modules of a crate import each other in a circle
	python3 scripts/module-cycles.py

fuzz: ## Fuzz the config, state, log-record and masking code (FUZZ_SECONDS each, default 300)
	@scripts/fuzz.sh $${FUZZ_SECONDS:-300}

fmt: ## Format the code
	cargo fmt --all

s3-start: ## Install (once) and start the local S3 server (SeaweedFS on 127.0.0.1)
	@scripts/s3-server.sh start

s3-stop: ## Stop the local S3 server
	@scripts/s3-server.sh stop

s3-env: ## Print the environment tests use to reach the local S3 server
	@scripts/s3-server.sh env

s3-compat: ## Run the storage conformance suite against every S3 server that runs here
	@scripts/s3-compat.sh

bench: ## Run the benchmarks and print the numbers for docs/benchmarks.md
	@scripts/bench.sh

clean: ## Remove build outputs and test scratch
	cargo clean
