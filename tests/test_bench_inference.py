"""
benchmarks/bench_inference.py runs end to end in a tiny setting and prints consistent tables;
its stage split times the stages it names, and shows the median call's.
"""
import json
import os
import subprocess
import sys
import time

import pytest
from torch import nn

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(REPO, "benchmarks"))
from inference_bench.timing import time_inference  # noqa: E402
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


def test_count_launches_sees_the_light_heads_one_read_per_batch(tmp_path):
    """--count-launches on the CPU counts the model's call: the light head reads one to three
    values per batch (the crops' size), as many for 1 person as for 3, and the counter sees its
    device calls."""
    done = subprocess.run(
        [sys.executable, os.path.join(REPO, "benchmarks", "bench_inference.py"), *TINY[:4], "--persons", "1", "3",
         "--models", "pose2seg_light", "--no-flops", "--no-memory", "--count-launches", *TINY[TINY.index("--opts"):]],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    header, rows = table_rows(done.stdout, "size")
    assert header[-2:] == ["syncs", "launches"]
    cells = [dict(zip(header, row)) for row in rows]
    assert [c["persons"] for c in cells] == ["1", "3"]
    assert 1 <= int(cells[0]["syncs"]) <= 3 and cells[0]["syncs"] == cells[1]["syncs"], cells
    assert int(cells[0]["launches"]) > 100 and cells[0]["launches"] == cells[1]["launches"], cells


class Sleeps(nn.Module):
    """Sleeps for the next of ``seconds`` at each call."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = list(seconds)

    def forward(self, *args):
        time.sleep(self.seconds.pop(0))
        return args


class StagedModel(nn.Module):
    """A model whose stages (and the rest of its call) take known times: a backbone, one head
    module (Pose2Seg) or two (Mask R-CNN's proposal generator and ROI heads), then the rest."""

    def __init__(self, backbone, heads, rest):
        super().__init__()
        self.backbone, self.rest = Sleeps(backbone), list(rest)
        if len(heads) == 1:
            self.head = Sleeps(heads[0])
        else:
            self.proposal_generator, self.roi_heads = Sleeps(heads[0]), Sleeps(heads[1])

    def forward(self, batch):
        self.backbone()
        for name in ("head", "proposal_generator", "roi_heads"):
            if hasattr(self, name):
                getattr(self, name)()
        time.sleep(self.rest.pop(0))
        return [{"instances": [None, None, None]}]


# seconds of (warm-up call, timed calls 1, 2, 3): totals 90, 70 and 50 ms, the median the second
BACKBONE = (0.001, 0.010, 0.020, 0.040)
HEAD = (0.001, 0.020, 0.030, 0.010)
REST = (0.001, 0.060, 0.020, 0.000)
SLACK_MS = 15  # a sleep lasts at least its time; on a busy machine somewhat more


@pytest.mark.parametrize("name", ["pose2seg_light", "mask_rcnn"])
def test_split_times_the_named_stages_of_the_median_call(name):
    if name == "mask_rcnn":  # the head is two modules, split evenly
        heads = ([s / 2 for s in HEAD], [s / 2 for s in HEAD])
    else:
        heads = (HEAD,)
    model = StagedModel(BACKBONE, heads, REST)
    result = time_inference(model, name, {}, repeats=3, device="cpu", warmup=1, split="sync")
    expected = {"ms": 70, "backbone_ms": 20, "head_ms": 30, "else_ms": 20}
    for key, ms in expected.items():
        assert ms - 1 <= result[key] <= ms + SLACK_MS, (key, result)
    for measured, ms in zip(result["all_ms"], (90, 70, 50)):
        assert ms <= measured <= ms + SLACK_MS, result
    assert result["dets"] == 3
