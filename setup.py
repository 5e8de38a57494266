#!/usr/bin/env python
"""pose2seg_d2: Pose2Seg (detection-free human instance segmentation) on Detectron2.

Detectron2 itself is not declared here: it is not on PyPI under its own name.
`tools/setup_env.sh` (run by `make setup`) keeps an importable detectron2 or installs
the registry wheel of upstream; see README.md, "Why detectron2 is installed this way".
"""
from setuptools import find_packages, setup

setup(
    name="pose2seg_d2",
    version="0.1.0",
    description="Pose2Seg: pose-based, detection-free human instance segmentation on Detectron2",
    python_requires=">=3.10",
    packages=find_packages(include=["pose2seg_d2", "pose2seg_d2.*"]),
    package_data={
        "pose2seg_d2": [
            "assets/*.json", "assets/backbones/*.json", "assets/backbones/*.pth",
            "assets/keypoint_heads/*.json", "assets/keypoint_heads/*.pth",
        ]
    },
    install_requires=[
        "torch>=2.0",
        "torchvision>=0.15",
        "numpy",
        "opencv-python-headless",
        "scipy",
        # detectron2's runtime dependencies (the registry wheel is installed without them)
        "fvcore",
        "iopath",
        "pycocotools>=2.0.2",
        "omegaconf>=2.1,<2.4",
        "hydra-core>=1.1",
        "termcolor>=1.1",
        "yacs>=0.1.8",
        "tabulate",
        "cloudpickle",
        "tqdm>4.29.0",
        "matplotlib",
        "Pillow>=7.1",
        "tensorboard",
        "packaging",
        # detectron2.model_zoo imports pkg_resources, which setuptools 81 removes
        "setuptools<81",
    ],
    extras_require={
        "dev": ["pytest", "pytest-timeout", "hypothesis", "installer"],
        # tools/deploy/export_model.py --format onnx, and running its files (pose2seg_d2.export)
        "export": ["onnx>=1.17", "onnxscript>=0.5", "onnxruntime>=1.20"],
    },
)
