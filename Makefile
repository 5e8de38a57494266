# `make test`: set up .venv from scratch if needed, then run the test suite.
# `make demo`: set up, then run the main job on the embedded synthetic default.
VENV ?= .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.pose2seg-ready

.PHONY: setup test bench demo demo-keypoints clean

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

# The third row: Pose2Seg from images alone, with a Keypoint R-CNN trained on the synthetic
# train split (about 40 min on a 2-core CPU; KEYPOINT_WEIGHTS=file skips that training).
# Reuses the weights `make demo` trained when they are there -> output/demo_keypoints/
DEMO_WEIGHTS = $(if $(wildcard output/demo/pose2seg/model_final.pth),--pose2seg-weights output/demo/pose2seg/model_final.pth) \
	$(if $(wildcard output/demo/mask_rcnn/model_final.pth),--mask-rcnn-weights output/demo/mask_rcnn/model_final.pth)
demo-keypoints: $(READY)
	$(PY) tools/compare.py \
		--pose2seg-config configs/synthetic/pose2seg_R_18_FPN_synthetic.yaml \
		--mask-rcnn-config configs/synthetic/mask_rcnn_R_18_FPN_synthetic.yaml \
		--keypoint-config configs/synthetic/keypoint_rcnn_R_18_FPN_synthetic.yaml \
		$(if $(KEYPOINT_WEIGHTS),--keypoint-weights $(KEYPOINT_WEIGHTS)) $(DEMO_WEIGHTS) \
		--dataset synthetic_occluded_test --output-dir output/demo_keypoints

clean:
	rm -rf $(VENV) .pytest_cache
