# `make test`: set up .venv from scratch if needed, then run the test suite.
# `make demo`: set up, then run the main job on the embedded synthetic default.
VENV ?= .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.pose2seg-ready

.PHONY: setup test bench demo pretrain clean

setup: $(READY)

$(READY): setup.py tools/setup_env.sh
	bash tools/setup_env.sh $(VENV)
	touch $@

test: $(READY)
	$(PY) -m pytest -q tests

bench: $(READY)
	$(PY) benchmarks/bench_ops.py

# The main job: synthetic occluded humans (generated on first use); Mask R-CNN, Pose2Seg and a
# Keypoint R-CNN trained on the CPU from the shared synthetic-pretrained backbone; the
# keypoints-only reference fitted on val; four rows on the all-levels and the occluded test sets
# -> $(DEMO_OUT)/ (SEED=1 DEMO_OUT=output/demo_seed1 for another seed)
SEED ?= 0
DEMO_OUT ?= output/demo
demo: $(READY)
	$(PY) tools/compare.py \
		--mask-rcnn-config configs/synthetic/mask_rcnn_R_18_FPN_synthetic.yaml \
		--pose2seg-config configs/synthetic/pose2seg_R_18_FPN_synthetic.yaml \
		--keypoint-config configs/synthetic/keypoint_rcnn_R_18_FPN_synthetic.yaml \
		--keypoints-only-config configs/synthetic/keypoints_only_synthetic.yaml \
		--datasets synthetic_occluded_all_levels synthetic_occluded_test \
		--fit-dataset synthetic_occluded_val --seed $(SEED) --output-dir $(DEMO_OUT)

# The shared backbone of the synthetic models, shipped in pose2seg_d2/assets/backbones/ (about 2
# hours on a 2-core CPU; PRETRAIN_OPTS="MODEL.DEVICE cuda" for a GPU)
pretrain: $(READY)
	$(PY) tools/pretrain_backbone.py $(PRETRAIN_OPTS)

clean:
	rm -rf $(VENV) .pytest_cache
