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

# The main job: synthetic occluded humans (generated on first use), Pose2Seg and Mask R-CNN
# trained from scratch on the CPU, compared on the occluded test split -> output/demo/
demo: $(READY)
	$(PY) tools/compare.py \
		--pose2seg-config configs/synthetic/pose2seg_R_18_FPN_synthetic.yaml \
		--mask-rcnn-config configs/synthetic/mask_rcnn_R_18_FPN_synthetic.yaml \
		--dataset synthetic_occluded_test --output-dir output/demo

clean:
	rm -rf $(VENV) .pytest_cache
