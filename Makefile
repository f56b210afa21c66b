# Two commands do all set-up on a fresh machine:
#   make run   - create .venv, install, run the workflow on the demo set
#   make test  - create .venv, install, run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: run test venv lint rulegraph clean

$(BIN)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $@

venv: $(BIN)/.installed

run: venv
	$(BIN)/snakemake --cores $(CORES)
	@echo
	@echo "Results: results/report/summary.md (all models), results/models/<model>/<input>/"
	@echo "Browsable report: $(BIN)/snakemake --report report.html"

test: venv
	$(BIN)/python -m pytest tests -ra

lint: venv
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile rules/

rulegraph: venv
	$(BIN)/snakemake --rulegraph | dot -Tsvg > docs/rulegraph.svg

clean:
	rm -rf results resources .snakemake
