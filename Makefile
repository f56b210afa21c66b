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

.PHONY: run test venv lock lint rulegraph clean

# requirements.txt pins what genreflow asks for, requirements.lock every package of the
# install (see `make lock`); all installs take the lock as constraints. The GPU install
# reads requirements.txt with TensorFlow's CUDA build at the same version in place of
# tensorflow-cpu. Lines marked `# no-deps` (musicnn: only its weight files are used) are
# installed without dependencies. librosa's cached functions are compiled once
# (genreflow/devices.py), so that parallel jobs start warm: that needs only librosa's
# stack, so it compiles on one core while pip installs the rest (TensorFlow, Snakemake)
# on the other; the lock keeps the two installs from resolving different versions.
NO_DEPS = $$(sed -n 's/^\([^\# ]*\) *\# no-deps.*/\1/p' requirements.txt)

$(BIN)/.installed-$(TENSORFLOW): requirements.txt requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	rm -f $(BIN)/.installed $(BIN)/.installed-*
ifeq ($(TENSORFLOW),gpu)
	sed 's/^tensorflow-cpu==/tensorflow[and-cuda]==/' requirements.txt | grep -v '# no-deps' >$(VENV)/requirements-gpu.txt
	$(BIN)/python -m pip uninstall --quiet --yes tensorflow-cpu
else
	grep -v '# no-deps' requirements.txt >$(VENV)/requirements-cpu.txt
	$(BIN)/python -m pip uninstall --quiet --yes tensorflow
endif
	$(BIN)/python -m pip install --quiet -c requirements.lock librosa
	$(BIN)/python -m pip install --quiet -c requirements.lock --no-deps $(NO_DEPS) --editable .
	$(BIN)/python -m genreflow.devices warm-numba-cache & warm=$$!; \
	$(BIN)/python -m pip install --quiet -c requirements.lock -r $(VENV)/requirements-$(TENSORFLOW).txt; \
	installed=$$?; wait $$warm && exit $$installed
	touch $@

# Rewrite requirements.lock with what requirements.txt resolves to today (after editing
# requirements.txt), in a scratch venv; then commit both files.
lock:
	rm -rf $(VENV)-lock && $(PYTHON) -m venv $(VENV)-lock
	grep -v '# no-deps' requirements.txt >$(VENV)-lock/requirements.txt
	$(VENV)-lock/bin/python -m pip install --quiet -r $(VENV)-lock/requirements.txt
	$(VENV)-lock/bin/python -m pip install --quiet --no-deps $(NO_DEPS)
	{ sed '/^[^#]/,$$d' requirements.lock; $(VENV)-lock/bin/python -m pip freeze; } >$(VENV)-lock/lock
	mv $(VENV)-lock/lock requirements.lock
	rm -rf $(VENV)-lock

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
