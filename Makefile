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
# with the shipped bottom-up keypoint head on its own backbone features (DEMO_KEYPOINTS=
# keypoint_rcnn trains a Keypoint R-CNN for that row instead); the keypoints-only reference
# fitted on val; four rows on the all-levels and the occluded test sets -> $(DEMO_OUT)/
# (SEED=1 DEMO_OUT=output/demo_seed1 for another seed). Each phase's usual time (this machine
# kind, README "Demo") feeds the log's forecast of the time left.
SEED ?= 0
DEMO_OUT ?= output/demo
DEMO_KEYPOINTS ?= bottom_up
# when make started, before the set-up: the run's wall time counts from here
DEMO_STARTED_AT := $(shell date +%s)
ifeq ($(DEMO_KEYPOINTS),keypoint_rcnn)
DEMO_KEYPOINT_ARGS := --keypoint-config configs/synthetic/keypoint_rcnn_R_18_FPN_synthetic.yaml
DEMO_KEYPOINT_SECONDS := 400
else
DEMO_KEYPOINT_ARGS := --keypoint-config configs/synthetic/bottom_up_R_18_FPN_synthetic.yaml \
	--keypoint-weights pose2seg_d2://keypoint_heads/bottom_up_R_18_FPN_synthetic.pth
DEMO_KEYPOINT_SECONDS := 40
endif
demo: $(READY)
	$(PY) tools/compare.py \
		--mask-rcnn-config configs/synthetic/mask_rcnn_R_18_FPN_synthetic.yaml \
		--pose2seg-config configs/synthetic/pose2seg_R_18_FPN_synthetic.yaml \
		$(DEMO_KEYPOINT_ARGS) \
		--keypoints-only-config configs/synthetic/keypoints_only_synthetic.yaml \
		--datasets synthetic_occluded_all_levels synthetic_occluded_test \
		--fit-dataset synthetic_occluded_val --seed $(SEED) --output-dir $(DEMO_OUT) \
		--started-at $(DEMO_STARTED_AT) \
		--expected-seconds setup=80 data=21 mask_rcnn=530 pose2seg=132 keypoint_model=$(DEMO_KEYPOINT_SECONDS) \
			keypoints_only=60 evaluate_synthetic_occluded_all_levels=60 evaluate_synthetic_occluded_test=60

# The shared backbone of the synthetic models, shipped in pose2seg_d2/assets/backbones/ (about 2
# hours on a 2-core CPU; PRETRAIN_OPTS="MODEL.DEVICE cuda" for a GPU)
pretrain: $(READY)
	$(PY) tools/pretrain_backbone.py $(PRETRAIN_OPTS)

clean:
	rm -rf $(VENV) .pytest_cache
