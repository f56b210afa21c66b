# Two commands do all set-up on a fresh machine:
#   make run   - create .venv, install, run the workflow on the demo set
#   make test  - create .venv, install, run the whole test suite
# On a GPU machine, `make venv GPU=1` installs TensorFlow's CUDA build
# (tensorflow[and-cuda], same version) instead of tensorflow-cpu; `make venv`
# switches back.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
GPU ?= 0

ifeq ($(GPU),1)
TENSORFLOW := gpu
else
TENSORFLOW := cpu
endif

.PHONY: run test venv lint rulegraph clean

# requirements.txt pins tensorflow-cpu; the GPU install reads the same file with
# TensorFlow's CUDA build at the same version in its place. Lines marked `# no-deps`
# (musicnn: only its weight files are used) are installed after, without dependencies.
# Last, librosa's cached functions are compiled once (genreflow/devices.py), so
# parallel jobs start warm.
$(BIN)/.installed-$(TENSORFLOW): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	rm -f $(BIN)/.installed $(BIN)/.installed-*
ifeq ($(TENSORFLOW),gpu)
	sed 's/^tensorflow-cpu==/tensorflow[and-cuda]==/' requirements.txt | grep -v '# no-deps' >$(VENV)/requirements-gpu.txt
	$(BIN)/python -m pip uninstall --quiet --yes tensorflow-cpu
	$(BIN)/python -m pip install --quiet -r $(VENV)/requirements-gpu.txt
else
	$(BIN)/python -m pip uninstall --quiet --yes tensorflow
	grep -v '# no-deps' requirements.txt >$(VENV)/requirements-cpu.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/requirements-cpu.txt
endif
	$(BIN)/python -m pip install --quiet --no-deps $$(sed -n 's/^\([^# ]*\) *# no-deps.*/\1/p' requirements.txt)
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	$(BIN)/python -m genreflow.devices warm-numba-cache
	touch $@

venv: $(BIN)/.installed-$(TENSORFLOW)

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
