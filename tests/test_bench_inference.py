"""benchmarks/bench_inference.py runs end to end in a tiny setting and prints consistent tables."""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
COLUMNS = [
    "size", "persons", "model", "ms/img", "vs Mask R-CNN", "GFLOPs", "peak MB", "dets",
    "backbone ms", "head ms", "else ms", "else %",
]  # fmt: skip
TINY = [
    "--sizes", "64", "--persons", "2", "--repeats", "1", "--models", "pose2seg_light", "mask_rcnn",
    "--opts", "MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64", "MODEL.FPN.OUT_CHANNELS", "16",
    "MODEL.POSE2SEG.WINDOW_SIZE", "(32, 32)", "MODEL.POSE2SEG.SEG_MODULE.STEM_CHANNELS", "16",
    "MODEL.POSE2SEG.SEG_MODULE.NUM_UNITS", "2", "MODEL.POSE2SEG.SEG_MODULE.BOTTLENECK_CHANNELS", "8",
    "MODEL.POSE2SEG.SEG_MODULE.UNIT_OUT_CHANNELS", "32", "MODEL.ROI_BOX_HEAD.FC_DIM", "64",
    "MODEL.ROI_MASK_HEAD.CONV_DIM", "16", "MODEL.RPN.POST_NMS_TOPK_TEST", "100",
]  # fmt: skip


def table_rows(text, first_column):
    """The rows (lists of cells) of the markdown table whose header starts with ``first_column``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_column} |"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    assert set(rows[1][0]) <= {"-"}, rows[1]  # the separator line
    return rows[0], rows[2:]


def test_tiny_run_prints_the_tables_and_writes_json(tmp_path):
    output = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, os.path.join(REPO, "benchmarks", "bench_inference.py"), "--output", str(output), *TINY],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SCORE_THRESH_TEST=0" in done.stdout and "DETECTIONS_PER_IMAGE=persons" in done.stdout

    header, rows = table_rows(done.stdout, "size")
    assert header == COLUMNS
    assert [r[2] for r in rows] == ["Pose2Seg light head", "Mask R-CNN"]
    for row in rows:
        cell = dict(zip(header, row))
        assert cell["size"] == "64x85" and cell["persons"] == "2" and cell["dets"] == "2"
        total, parts = float(cell["ms/img"]), [float(cell[c]) for c in ("backbone ms", "head ms", "else ms")]
        assert total > 0 and parts[0] > 0 and parts[1] > 0 and parts[2] >= 0
        assert abs(sum(parts) - total) <= 0.2 + 1e-9, row  # the split adds up (four cells rounded to 0.1)
        assert float(cell["GFLOPs"]) > 0
        if os.path.exists("/proc/self/clear_refs"):  # Linux: the resident-set probe works
            assert float(cell["peak MB"]) > 0
        else:
            assert cell["peak MB"] == "-"
    assert dict(zip(header, rows[1]))["vs Mask R-CNN"] == "-"

    head_header, head_rows = table_rows(done.stdout, "head")
    assert head_header[:3] == ["head", "window", "in channels"] and len(head_rows) == 1
    assert head_rows[0][1] == "32x32" and head_rows[0][2] == str(16 + 55)
    assert float(head_rows[0][4]) > 0  # GMACs per person

    results = json.loads(output.read_text())
    assert [(r["model"], r["persons"], r["dets"]) for r in results["inference"]] == [
        ("pose2seg_light", 2, 2),
        ("mask_rcnn", 2, 2),
    ]
    pose2seg, mask_rcnn = results["inference"]
    assert pose2seg["ratio"] == pytest.approx(pose2seg["ms"] / mask_rcnn["ms"])
    assert dict(zip(header, rows[0]))["vs Mask R-CNN"] == f"{pose2seg['ratio']:.2f}x"
    for r, row in zip(results["inference"], rows):
        cell = dict(zip(header, row))
        assert cell["ms/img"] == f"{r['ms']:.1f}" and cell["else %"] == f"{100 * r['else_ms'] / r['ms']:.1f}"
        assert abs(r["backbone_ms"] + r["head_ms"] + r["else_ms"] - r["ms"]) < 1e-6
        assert r["head_gflops"] > 0 and r["backbone_gflops"] > 0
        assert r["gflops"] >= r["backbone_gflops"] + r["head_gflops"] - 1e-9


def test_release_model_is_timed_beside_the_others(tmp_path):
    done = subprocess.run(
        [sys.executable, os.path.join(REPO, "benchmarks", "bench_inference.py"), *TINY[:6],
         "--models", "pose2seg_release", "pose2seg_light", "--no-flops", "--no-memory",
         *TINY[TINY.index("--opts"):], "MODEL.POSE2SEG.RELEASE_INPUT_SIZE", "128"],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    header, rows = table_rows(done.stdout, "size")
    assert [r[2] for r in rows] == ["Pose2Seg release model", "Pose2Seg light head"]
    for row in rows:
        cell = dict(zip(header, row))
        assert cell["dets"] == "2" and float(cell["ms/img"]) > 0 and float(cell["backbone ms"]) > 0
