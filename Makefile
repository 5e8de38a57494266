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

# The main job: synthetic occluded humans (generated on first use); Mask R-CNN and Pose2Seg
# trained on the CPU from the shared synthetic-pretrained backbone; Pose2Seg from images alone
# with two shipped keypoint models on that backbone (pose2seg_d2/assets/keypoint_heads/: the
# bottom-up head, run on Pose2Seg's own features, and a Keypoint R-CNN; tools/ship_heads.py
# remakes them); the keypoints-only reference fitted on val; five rows on the all-levels and
# the occluded test sets -> $(DEMO_OUT)/ (SEED=1 DEMO_OUT=output/demo_seed1 for another seed).
# The shipped keypoint models' keypoint AP does not depend on SEED and is not measured again
# (README "What it measures" has it and the command that measures it).
# Each phase's usual time (this machine kind, README "The demo") feeds the log's forecast.
SEED ?= 0
DEMO_OUT ?= output/demo
# when make started, before the set-up: the run's wall time counts from here
DEMO_STARTED_AT := $(shell date +%s)
demo: $(READY)
	$(PY) tools/compare.py \
		--mask-rcnn-config configs/synthetic/mask_rcnn_R_18_FPN_synthetic.yaml \
		--pose2seg-config configs/synthetic/pose2seg_R_18_FPN_synthetic.yaml \
		--keypoint-config configs/synthetic/bottom_up_R_18_FPN_synthetic.yaml \
			configs/synthetic/keypoint_rcnn_R_18_FPN_synthetic.yaml \
		--keypoint-weights pose2seg_d2://keypoint_heads/bottom_up_R_18_FPN_synthetic.pth \
			pose2seg_d2://keypoint_heads/keypoint_rcnn_R_18_FPN_synthetic.pth \
		--keypoints-only-config configs/synthetic/keypoints_only_synthetic.yaml \
		--datasets synthetic_occluded_all_levels synthetic_occluded_test \
		--fit-dataset synthetic_occluded_val --seed $(SEED) --output-dir $(DEMO_OUT) \
		--no-keypoint-ap --started-at $(DEMO_STARTED_AT) \
		--expected-seconds setup=95 data=23 mask_rcnn=580 pose2seg=140 keypoint_model=2 \
			keypoints_only=6 evaluate_synthetic_occluded_all_levels=95 evaluate_synthetic_occluded_test=95

# The shared backbone of the synthetic models, shipped in pose2seg_d2/assets/backbones/ (about 2
# hours on a 2-core CPU; PRETRAIN_OPTS="MODEL.DEVICE cuda" for a GPU)
pretrain: $(READY)
	$(PY) tools/pretrain_backbone.py $(PRETRAIN_OPTS)

clean:
	rm -rf $(VENV) .pytest_cache
