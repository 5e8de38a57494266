# `make test`: set up .venv from scratch if needed, then run the test suite.
# `make demo`: set up, then run the main job on the embedded synthetic default.
VENV ?= .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.pose2seg-ready

.PHONY: setup test bench demo clean

setup: $(READY)

$(READY): setup.py tools/setup_env.sh
	bash tools/setup_env.sh $(VENV)
	touch $@

test: $(READY)
	$(PY) -m pytest -q tests

bench: $(READY)
	$(PY) benchmarks/bench_ops.py

clean:
	rm -rf $(VENV) .pytest_cache
