"""The comparison's tables: results.json (every row) and results.md (one table per test set)."""
import json
import os

from ..evaluation import MAX_IOU_BUCKETS

__all__ = ["write_results"]


def _fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def write_results(output_dir, datasets, runs, notes=(), extra=None):
    """
    results.json ({"dataset": the first of ``datasets``, "datasets", "rows" (each with its
    "dataset"), and ``extra``'s keys) and results.md (one table per dataset, the settings, then
    ``notes``); returns the markdown text.

    Args:
        runs (list[ModelRun]): evaluated runs (:func:`~pose2seg_d2.comparison.evaluate_run`).
    """
    rows = [r.row() for r in runs]
    with open(os.path.join(output_dir, "results.json"), "w") as f:
        json.dump({"dataset": datasets[0], "datasets": list(datasets), "rows": rows, **(extra or {})}, f, indent=2)
    lines = [
        "# Pose2Seg vs Mask R-CNN",
        "",
        "Mask AP (COCO protocol, %); AP by MaxIoU bucket counts only the persons of the bucket "
        "(others ignored); time per image measured while evaluating, on the same images for every "
        "row; \"-\" train columns: weights loaded (or nothing learned), not trained in this run.",
    ]
    for dataset in datasets:
        lines += ["", f"## `{dataset}`", ""] + _ap_table([r for r in rows if r["dataset"] == dataset])
    lines += ["", "Settings:", ""] + _settings_table(rows)
    for note in notes:
        lines += ["", note]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(output_dir, "results.md"), "w") as f:
        f.write(text)
    return text


def _ap_table(rows):
    """Markdown lines: one row per run of one test set."""
    buckets = [name for name, _, _ in MAX_IOU_BUCKETS]
    lines = [
        "| model | keypoints | AP | AP50 | AP75 | " + " | ".join(f"AP MaxIoU {b}" for b in buckets)
        + " | ms / image | train iters | train s |",
        "|---" * (8 + len(buckets)) + "|",
    ]  # fmt: skip
    for row in rows:
        lines.append(
            f"| {row['label']} | {row['keypoints'] or '-'} | {_fmt(row['AP'])} | {_fmt(row['AP50'])} | "
            f"{_fmt(row['AP75'])} | " + " | ".join(_fmt(row["AP_by_max_iou"][b]) for b in buckets)
            + f" | {_fmt(row['ms_per_image'], 0)} | {row['train_iters'] or '-'} | "
            + f"{_fmt(row['train_seconds'] or None, 0)} |"
        )
    return lines


def _settings_table(rows):
    """Markdown lines: each row label's settings (its first row's), one column per setting."""
    seen, settings = set(), []
    for row in rows:
        if row["label"] not in seen:
            seen.add(row["label"])
            settings.append(row)
    keys = list(dict.fromkeys(k for row in settings for k in row["config"]))
    lines = ["| row | " + " | ".join(keys) + " |", "|---" * (1 + len(keys)) + "|"]
    for row in settings:
        lines.append(f"| {row['label']} | " + " | ".join(str(row["config"].get(k, "-")) for k in keys) + " |")
    return lines
