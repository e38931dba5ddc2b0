# Every target that needs Python builds .venv first from requirements.txt (again whenever that file changes).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PARAMS ?=
SOURCE ?=

.PHONY: venv test lint run clean

venv: $(STAMP)

$(STAMP): requirements.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

# demisto-sdk, offline: the strict checks of Config/validation_config.toml on the whole pack, then xsoar-lint on the
# integration's code; any finding fails. The SDK's debug log (build/validate/) shows which checks ran.
SDK := DEMISTO_SDK_IGNORE_CONTENT_WARNING=1 $(BIN)/demisto-sdk
PACK := Packs/EventFetcher
INTEGRATION := $(PACK)/Integrations/EventFetcher
UNIFIED := Integrations/integration-EventFetcher.yml

.PHONY: validate build

validate: $(STAMP)
	rm -rf build/validate && mkdir -p build/validate
	$(SDK) validate -a --config-path Config/validation_config.toml --category-to-run strict_offline \
		--log-file-path build/validate --file-log-threshold DEBUG
	@echo "demisto-sdk validate: $$(grep -o 'Starting execution for [A-Z]*[0-9]* validator' build/validate/*.log \
		| sort -u | wc -l | tr -d ' ') checks ran on $(PACK), no finding"
	$(SDK) xsoar-lint $(INTEGRATION)/EventFetcher.py > build/validate/xsoar-lint.txt 2>&1; status=$$?; \
		cat build/validate/xsoar-lint.txt; \
		if [ $$status -ne 0 ] || grep -Eq ':[0-9]+:[0-9]+: [A-Z][0-9]{4} ' build/validate/xsoar-lint.txt; then \
			echo "xsoar-lint: findings above"; exit 1; fi
	@echo "demisto-sdk xsoar-lint: no finding in $(INTEGRATION)/EventFetcher.py"

# The uploadable integration (committed; tests/test_pack.py checks that it matches the sources) and the pack zip.
build: $(STAMP)
	mkdir -p $(dir $(UNIFIED))
	$(SDK) prepare-content -i $(INTEGRATION) -o $(UNIFIED) -f
	rm -rf build/packs && mkdir -p build/packs
	$(SDK) zip-packs -i $(PACK) -o build/packs
	@echo "built $(UNIFIED) and build/packs/uploadable_packs/EventFetcher.zip"

test: lint validate
	$(BIN)/python -m pytest

# SOURCE=<graph|okta|servicenow|pagerduty|jira|custom>: the simulator speaks that API (default: the Event Source).
run: $(STAMP)
	$(BIN)/python -m simulator.demo $(if $(PARAMS),--params $(PARAMS)) $(if $(SOURCE),--source $(SOURCE))

# Not part of `make test`: what a fetch run costs on every source, the Event Source and each API dialect side by
# side, against the fewest reads each API allows (bench/results/latest.json).
.PHONY: bench

bench: $(STAMP)
	$(BIN)/python bench/run_bench.py

clean:
	rm -rf $(VENV) run build .pytest_cache .ruff_cache .hypothesis
