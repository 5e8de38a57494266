#!/usr/bin/env python
"""
Pose2Seg R50-FPN (release-width and light SegModule, and the release's own test-time model)
against Detectron2's Mask R-CNN R50-FPN, side by side on the same synthetic images and persons.

    python benchmarks/bench_inference.py [--device cpu|cuda] [--sizes 512 800]
        [--persons 1 5 10 20] [--repeats 3]
        [--models pose2seg pose2seg_light pose2seg_release mask_rcnn]
        [--train] [--profile] [--quick] [--autocast bf16|fp16] [--output results.json]
        [--opts KEY VALUE ...]

Inputs: one random-noise BGR image per setting, of shortest side S and aspect 4:3 (512x683,
800x1067), with N persons whose keypoints are the packaged pose templates, scaled (15-60% of S
tall), rotated (+-17 degrees), shifted and jittered; about 1 keypoint in 7 unlabeled, 1 in 5
labeled occluded (v=1). The images are given at their size (no resizing), with ``height`` and
``width`` equal to it, so the outputs are at the image size too. Random weights
(MODEL.WEIGHTS ""), with the backbones' FrozenBatchNorm statistics set from one image so that
activations stay finite (see ``calibrate_frozen_batchnorm``); the Pose2Seg configs use their
own templates (the release's 3 COCO templates, shipped with the package).

``pose2seg_release`` is ``configs/pose2seg_R_50_FPN_release.yaml`` (ReleasePose2Seg, what the
release computes at test time): whatever the image size, its backbone sees the image warped
into 512 x 512, and its head is the release-width SegModule with two classes.

Pose2Seg gets the N keypoint sets as ``instances.gt_keypoints`` (KEYPOINT_SOURCE "gt"). Mask
R-CNN with random weights would keep no detection; it runs with ROI_HEADS.SCORE_THRESH_TEST=0 and
TEST.DETECTIONS_PER_IMAGE=N, so it keeps N detections (column ``dets``) and its mask head and
mask pasting handle as many persons as Pose2Seg. Its RPN and box head do their usual work.

What is measured, per model, image size and person count (batch of one image):

- ``ms/img``: median over ``--repeats`` timed calls of ``model([input])`` in eval mode under
  ``torch.no_grad()``, after ``--warmup`` untimed calls (default 1); preprocessing (normalization, padding) and
  postprocessing (masks pasted at the image size, boxes, Instances) included, data loading not.
- ``backbone``, ``head``, ``else``: the same timed calls split by forward hooks on
  ``model.backbone`` and the head (Pose2Seg: ``model.head``, the SegModule; Mask R-CNN:
  ``model.proposal_generator`` + ``model.roi_heads``); ``else`` = total - backbone - head
  (Pose2Seg: keypoint transforms, template fit, skeleton features, affine-align, warping the
  masks back, boxes from masks, Instances). The split shown is that of the median call.
- ``GFLOPs``: fvcore's count over a traced inference (one multiply-add = one flop, so these are
  GMACs), through ``detectron2.utils.analysis.FlopCountAnalysis``; ops fvcore cannot count
  (gathers, sampling, NMS, element-wise ops Detectron2 ignores) are listed under the table.
- ``peak MB``: on the CPU, how much the resident set grows during one inference of a fresh
  process in which the model is already built (Linux VmHWM after the call minus VmRSS before
  it, the high-water mark reset by /proc/self/clear_refs): activations, workspaces and the
  allocator's pages, not the weights or the libraries. On CUDA,
  ``torch.cuda.max_memory_allocated()`` minus what is allocated before the call.
- ``train it/s`` (``--train``): training iterations per second (forward, losses, backward,
  optimizer step; no data loading) on one fixed batch of 2 images with ``--train-persons``
  persons each, after one warm-up iteration.

``--profile`` adds torch.profiler's op table of one Pose2Seg inference per size with
``--profile-persons`` persons.

On CUDA (``--device cuda``): every timed call is bracketed by ``torch.cuda.synchronize()``,
cuDNN's autotuner is on (``--no-cudnn-benchmark`` turns it off; the warm-up calls tune it), and
the split is measured with CUDA events recorded by the hooks (``--split events``, the default
there): ``backbone`` and ``head`` are the stream time between the events before and after the
module, so the hooks add no synchronization; ``--split sync`` synchronizes in the hooks instead
(the CPU default).

``--count-launches`` adds the columns ``syncs`` and ``launches`` for one call per setting: on
CUDA, torch.profiler's count of ``cudaStreamSynchronize``/``cudaDeviceSynchronize``/
``cudaEventSynchronize`` and blocking ``cudaMemcpy`` calls (host synchronizations) and of kernel
launches; on the CPU, what ``pose2seg_d2.diagnostics.host_syncs`` counts: the synchronizations
the call would make on CUDA and its calls on device data (about one kernel each).

``--variant NAME KEY VALUE ...`` (repeatable) runs every model once more per variant with
these config overrides on top of ``--opts`` (e.g. ``--variant bf16 MODEL.POSE2SEG.AUTOCAST bf16``).
``--autocast bf16|fp16`` puts every model call (timed, counted and measured) under
``torch.autocast`` instead, for any model, Mask R-CNN included; a variant without overrides
names such a run (``--autocast bf16 --no-default-variant --variant bf16_call``).
``--package-root DIR`` benchmarks the package and configs of another checkout (e.g. the commit
before a change) with this script.

The code is in ``benchmarks/inference_bench/``, one module a concept (models, inputs, timing,
counts, memory, report, cli).
"""
from inference_bench.cli import main as _main  # importing inference_bench reads --package-root first


def main(argv=None):
    return _main(argv, description=__doc__)


if __name__ == "__main__":
    main()
