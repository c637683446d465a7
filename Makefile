# The front door. A newcomer needs two commands:  make demo  and  make test.
# Both set up everything they need (Python venv, the CDK CLI from npm) on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# node_modules/.bin first: the Node.js LTS pinned in package.json (the npm package `node`) runs the
# CDK CLI and the jsii runtime behind aws-cdk-lib, whatever Node the machine has (npm is enough).
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: demo serve chaos bench bench-quick lint test test-unit test-integration test-contract test-chaos test-model model test-infra synth cfn-lint openapi events-catalogue clean

# The clone's virtualenv: the package editable with the dev extra. `pip install .` installs the deployed
# core and the operator's CLI only; the clone's own tooling (payments_dev: serve, demo, chaos, bench;
# infra: the CDK app; tests) is reached through a .pth naming the clone, from any working directory.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -c 'import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "serverless-payments-clone.pth").write_text(sys.argv[1] + "\n")' '$(CURDIR)'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## demo: a Cyber Monday scenario end to end on the local runtime, with a summary
demo: $(VENV)/.installed
	$(BIN)/payments demo

## serve: the API on :8080 and an AWS-compatible endpoint on :8081
serve: $(VENV)/.installed
	$(BIN)/payments serve

## chaos: fixed-seed fault injection at every step of the local runtime, then every invariant
chaos: $(VENV)/.installed
	$(BIN)/payments chaos --checkouts 300 --seed 7

## bench: the benchmark suite (figures, not tests): prints one table, writes docs/benchmarks.md
bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m payments_dev.bench.run

## bench-quick: a tiny run of every section (the figures mean nothing, nothing is written): does each benchmark run?
## (tests/unit/dev/test_bench_smoke.py runs every bench module's --quick in `make test`)
bench-quick: $(VENV)/.installed
	$(BIN)/python -m payments_dev.bench.run --quick

## test: the lint gates first, then every test, cdk synth of every stage (cdk-nag included) and cfn-lint
test: lint test-unit test-integration test-contract test-chaos test-model test-infra synth cfn-lint test-browser

## lint: ruff's rules, ruff's formatting (checked, never rewritten here) and mypy over the deployed code
## (configuration: [tool.ruff] and [tool.mypy] in pyproject.toml; the same hooks: .pre-commit-config.yaml)
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-unit: $(VENV)/.installed
	$(BIN)/python -m pytest -q tests/unit tests/reconciliation

# the local runtime owns process-wide moto state, so it runs in its own pytest process
test-integration: $(VENV)/.installed
	$(BIN)/python -m pytest -q tests/integration

# schemathesis over docs/openapi.json against its own local runtime: its own pytest process
test-contract: $(VENV)/.installed
	$(BIN)/python -m pytest -q tests/contract

# the chaos tests own a local runtime too: their own pytest process
test-chaos: $(VENV)/.installed
	$(BIN)/python -m pytest -q tests/chaos

# the reconciliation report in the system's Chromium (Playwright, nothing downloaded): its own pytest process;
# skipped, saying why, where no chromium is installed
.PHONY: test-browser report-screenshots
test-browser: $(VENV)/.installed
	$(BIN)/python -m pytest -q tests/browser

## report-screenshots: the four sample reconciliation reports at 390 and 1280 px, as docs/report-*.png
report-screenshots: $(VENV)/.installed
	$(BIN)/python -m payments_dev.report_samples --screenshots docs

# the model-based test of money owns a local runtime per PSP: its own pytest process, a bounded budget
# (MODEL_EXAMPLES examples of at most MODEL_STEPS_PER_EXAMPLE steps, per PSP)
test-model: $(VENV)/.installed
	$(BIN)/python -m pytest -q tests/model

## model: the model-based test of money with a large budget: make model STEPS=20000 (steps per PSP, in
## rounds of 2,500 steps, each on a fresh local runtime); prints the steps run on each PSP and the violations
STEPS ?= 2000
model: $(VENV)/.installed
	$(BIN)/python -m tests.model.large_run --steps $(STEPS) --parallel

test-infra: $(VENV)/.installed node_modules/.installed
	$(BIN)/python -m pytest -q tests/infrastructure

synth: $(VENV)/.installed node_modules/.installed
	npx cdk synth -q

cfn-lint: synth
	# W3005: CDK emits a redundant DependsOn from each function to its role
	$(BIN)/cfn-lint --ignore-checks W3005 -- cdk.out/*.template.json

## openapi: docs/openapi.json from the code, and docs/api.md (the API reference) from it
openapi: $(VENV)/.installed
	$(BIN)/payments openapi > docs/openapi.json
	$(BIN)/python -m payments_dev.apidoc --write

## events-catalogue: docs/events/schemas/<type>.json and docs/events/asyncapi.yaml from the events' models
events-catalogue: $(VENV)/.installed
	$(BIN)/python -m payments_dev.events_catalogue --write

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache
