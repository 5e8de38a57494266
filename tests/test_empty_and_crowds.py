"""
Images without persons (no annotations, or only crowd regions) give no masks with every keypoint
source, in evaluation, in batches mixed with other images, in Pose2SegPredictor and demo.py; and
crowds go through the head and the warp-back in chunks (MODEL.POSE2SEG.TEST_PERSONS_PER_CHUNK)
with the masks of all at once.
"""
import copy
import json
import math
import os
import shutil

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.engine import default_argument_parser
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances

import train_net
from pose2seg_d2.config import load_config
from pose2seg_d2.data import Pose2SegDatasetMapper, register_person_dataset
from pose2seg_d2.engine import Pose2SegPredictor, Pose2SegTrainer
from pose2seg_d2.modeling import GTKeypointSource

from .fixtures import make_tiny_person_dataset, tiny_pose2seg_cfg, write_templates
from .test_demo import load_demo
from .test_host_syncs import count, make_input, tiny_model
from .test_keypoint_sources import write_tiny_keypoint_rcnn_config

EMPTY_ID, CROWD_ID = 4, 5  # the image without annotations and the one with only a crowd region


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """3 images of 2 persons, then an image without annotations and one whose only annotation
    is a crowd region (uncompressed RLE, as COCO stores crowds), registered as a user would."""
    root = tmp_path_factory.mktemp("empty_and_crowds")
    json_file = make_tiny_person_dataset(str(root), num_images=3)
    with open(json_file) as f:
        data = json.load(f)
    first = data["images"][0]
    for image_id in (EMPTY_ID, CROWD_ID):
        file_name = f"{image_id:06d}.png"
        shutil.copy(os.path.join(root, "images", first["file_name"]), os.path.join(root, "images", file_name))
        data["images"].append(dict(first, id=image_id, file_name=file_name))
    h, w = first["height"], first["width"]
    region = np.zeros((h, w), np.uint8)
    region[10:60, 20:90] = 1
    runs = np.diff(np.concatenate([[0], np.flatnonzero(np.diff(region.flatten(order="F"))) + 1, [h * w]]))
    data["annotations"].append({
        "id": 1000, "image_id": CROWD_ID, "category_id": 1, "iscrowd": 1, "bbox": [20.0, 10.0, 70.0, 50.0],
        "area": float(region.sum()), "segmentation": {"size": [h, w], "counts": runs.tolist()},
        "keypoints": [0] * 51, "num_keypoints": 0,
    })  # fmt: skip
    assert mask_util.decode(mask_util.frPyObjects(data["annotations"][-1]["segmentation"], h, w)).sum() == region.sum()
    json_file = str(root / "with_empty.json")
    with open(json_file, "w") as f:
        json.dump(data, f)
    name = "tiny_empty_and_crowds"
    register_person_dataset(name, json_file, str(root / "images"))
    persons = {i["id"]: sum(a["image_id"] == i["id"] and not a["iscrowd"] for a in data["annotations"]) for i in data["images"]}
    assert persons[EMPTY_ID] == persons[CROWD_ID] == 0 and min(persons[i] for i in (1, 2, 3)) > 0
    return {"root": root, "name": name, "data": data, "persons": persons, "templates": write_templates(str(root / "t.json"))}


def dataset_cfg(dataset, *opts):
    cfg = tiny_pose2seg_cfg(str(dataset["root"] / "out"), dataset["name"], dataset["name"], dataset["templates"])
    cfg.merge_from_list(list(opts))
    return cfg


def evaluate(cfg, model):
    """Pose2SegTrainer.test (what training's evaluation and train_net.py --eval-only run): the
    results, and the number of masks given for each image id."""
    masks = {}

    def record(module, args, outputs):
        for x, out in zip(args[0], outputs):
            assert out["instances"].pred_masks.shape[1:] == (x["height"], x["width"])
            masks[x["image_id"]] = len(out["instances"])

    handle = model.register_forward_hook(record)
    try:
        results = Pose2SegTrainer.test(cfg, model)
    finally:
        handle.remove()
    return results, masks


def assert_finite_ap(results):
    assert all(math.isfinite(results["segm"][k]) and 0 <= results["segm"][k] <= 100 for k in ("AP", "AP50"))


def test_mapper_gives_empty_keypoints_for_no_persons_and_for_crowds_only(dataset):
    cfg = dataset_cfg(dataset)
    for is_train in (False, True):
        mapper = Pose2SegDatasetMapper(cfg, is_train)
        for record in DatasetCatalog.get(dataset["name"]):
            instances = mapper(record)["instances"]
            assert instances.gt_keypoints.tensor.shape == (dataset["persons"][record["image_id"]], 17, 3)


@pytest.mark.parametrize("architecture", ["Pose2Seg", "KeypointsOnlyMasks"])
def test_gt_source_evaluates_a_dataset_with_empty_and_crowd_only_images(dataset, architecture):
    cfg = dataset_cfg(dataset, "MODEL.META_ARCHITECTURE", architecture)
    torch.manual_seed(0)
    model = Pose2SegTrainer.build_model(cfg).eval()
    results, masks = evaluate(cfg, model)
    assert masks == dataset["persons"]
    assert_finite_ap(results)


def test_eval_only_and_training_evaluation_with_empty_images(dataset, tmp_path):
    """train_net.py --eval-only, and a short training (empty images kept in its batches too)
    that evaluates at its end."""
    cfg = dataset_cfg(
        dataset, "OUTPUT_DIR", str(tmp_path / "run"), "SOLVER.MAX_ITER", 4, "TEST.EVAL_PERIOD", 4,
        "DATALOADER.FILTER_EMPTY_ANNOTATIONS", False, "SOLVER.IMS_PER_BATCH", 5,
    )  # fmt: skip
    trainer = Pose2SegTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert_finite_ap(trainer._last_eval_results)  # DefaultTrainer's evaluation at the last iteration
    config_file = tmp_path / "cfg.yaml"
    config_file.write_text(cfg.dump())
    weights = str(tmp_path / "run" / "model_final.pth")
    args = default_argument_parser().parse_args(["--config-file", str(config_file), "--eval-only", "MODEL.WEIGHTS", weights])
    assert_finite_ap(train_net.main(args))


def test_json_source_evaluates_a_dataset_with_empty_and_crowd_only_images(dataset, tmp_path):
    # entries for the annotated persons; none for the empty image, and the crowd's "person" of
    # the file is another image's, so the crowd-only image has none either
    entries = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 0.9}
        for a in dataset["data"]["annotations"]
        if not a["iscrowd"]
    ]
    path = tmp_path / "keypoints.json"
    path.write_text(json.dumps(entries))
    cfg = dataset_cfg(dataset, "MODEL.POSE2SEG.KEYPOINT_SOURCE", "json", "MODEL.POSE2SEG.KEYPOINTS_FILE", str(path))
    torch.manual_seed(0)
    results, masks = evaluate(cfg, Pose2SegTrainer.build_model(cfg).eval())
    assert masks == dataset["persons"]
    assert_finite_ap(results)


def keypoint_model(tmp_path, *opts):
    """A tiny random Keypoint R-CNN: its config and weights files."""
    config = write_tiny_keypoint_rcnn_config(tmp_path / "kp.yaml", 96)
    torch.manual_seed(0)
    weights = str(tmp_path / "kp.pth")
    torch.save({"model": build_model(load_config(config)).state_dict()}, weights)
    return [
        "MODEL.POSE2SEG.KEYPOINT_SOURCE", "model", "MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE", config,
        "MODEL.POSE2SEG.KEYPOINT_MODEL.WEIGHTS", weights, "MODEL.POSE2SEG.KEYPOINT_CONFIDENCE_THRESHOLD", -1e9,
        "MODEL.POSE2SEG.MIN_CONFIDENT_KEYPOINTS", 0, *opts,
    ]  # fmt: skip


@pytest.mark.parametrize("detects", [False, True])
def test_model_source_evaluates_with_and_without_detections(dataset, tmp_path, detects):
    """A keypoint model that finds no one (MIN_PERSON_SCORE above every score) gives no masks;
    one that keeps its 4 detections gives 4 masks on every image, the empty ones too."""
    cfg = dataset_cfg(dataset, *keypoint_model(tmp_path, "MODEL.POSE2SEG.MIN_PERSON_SCORE", 0.0 if detects else 2.0))
    torch.manual_seed(0)
    results, masks = evaluate(cfg, Pose2SegTrainer.build_model(cfg).eval())
    assert masks == {i: 4 if detects else 0 for i in dataset["persons"]}
    if detects:
        assert_finite_ap(results)
    else:
        assert all(math.isnan(results["segm"][k]) for k in ("AP", "AP50"))


def test_a_batch_mixing_empty_and_annotated_images_gives_each_its_own_masks(dataset):
    cfg = dataset_cfg(dataset)
    mapper = Pose2SegDatasetMapper(cfg, False)
    inputs = [mapper(r) for r in DatasetCatalog.get(dataset["name"])]
    inputs = [inputs[3], inputs[0], inputs[4], inputs[1]]  # empty, 2 persons, crowd only, 2 persons
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    with torch.no_grad():
        together = model(inputs)
        alone = [model([x])[0] for x in inputs]
    for x, a, b in zip(inputs, together, alone):
        a, b = a["instances"], b["instances"]
        assert len(a) == dataset["persons"][x["image_id"]]
        assert a.pred_masks.shape == b.pred_masks.shape == (len(a), x["height"], x["width"])
        assert torch.equal(a.pred_masks, b.pred_masks)
        torch.testing.assert_close(a.scores, b.scores)


def test_gt_source_still_asks_for_keypoint_mapping(templates_file):
    """An input with no instances (mapped without keypoints, or a bare image) stays an error."""
    model = tiny_model(templates_file)
    x = make_input(2)
    del x["instances"]
    x["file_name"] = "/data/000005.jpg"
    with pytest.raises(ValueError, match=r"needs instances with gt_keypoints, but input 0 \(/data/000005.jpg\)"):
        with torch.no_grad():
            model([x])


def test_record_without_annotations_and_instances_without_persons_have_no_persons(dataset):
    """A record without an "annotations" key maps to no persons; the gt source takes instances
    without any person and without gt_keypoints (another mapper's) as no persons, and instances
    with persons but no gt_keypoints as not mapped with keypoints."""
    record = copy.deepcopy(DatasetCatalog.get(dataset["name"])[0])
    del record["annotations"]
    mapped = Pose2SegDatasetMapper(dataset_cfg(dataset), False)(record)
    assert mapped["instances"].gt_keypoints.tensor.shape == (0, 17, 3)

    source = GTKeypointSource()
    image = torch.zeros(3, 8, 8, dtype=torch.uint8)
    empty = Instances((8, 8), gt_boxes=Boxes(torch.zeros(0, 4)), gt_classes=torch.zeros(0, dtype=torch.long))
    inputs = [{"image": image, "instances": empty}, {"image": image, "instances": Instances((8, 8))}]
    out = source(inputs, [(8, 8)] * 2, torch.device("cpu"))
    assert [tuple(k.shape) for k, _ in out] == [(0, 17, 3)] * 2 and [len(s) for _, s in out] == [0, 0]
    persons = {"image": image, "file_name": "a.jpg", "instances": Instances((8, 8), gt_boxes=Boxes(torch.zeros(1, 4)))}
    with pytest.raises(ValueError, match=r"needs instances with gt_keypoints, but input 0 \(a.jpg\)"):
        source([persons], [(8, 8)], torch.device("cpu"))


# ---------------------------------------------------------------------------- predictor, demo
def test_predictor_and_demo_give_no_masks_for_an_image_without_persons(dataset, tmp_path, caplog):
    """json source: a file without entries for the image; model source: no detection."""
    image_file = str(dataset["root"] / "images" / f"{EMPTY_ID:06d}.png")
    image = cv2.imread(image_file)
    empty_results = tmp_path / "none.json"
    empty_results.write_text(json.dumps([{"image_id": 1, "category_id": 1, "keypoints": [5.0] * 51, "score": 1.0}]))
    cfg = dataset_cfg(dataset)
    cfg.DATASETS.TEST = ()
    torch.manual_seed(0)
    weights = str(tmp_path / "pose2seg.pth")
    torch.save({"model": build_model(cfg).state_dict()}, weights)
    config = tmp_path / "pose2seg.yaml"
    config.write_text(cfg.dump())
    kp_opts = keypoint_model(tmp_path, "MODEL.POSE2SEG.MIN_PERSON_SCORE", 2.0)
    for opts in (["MODEL.POSE2SEG.KEYPOINT_SOURCE", "json", "MODEL.POSE2SEG.KEYPOINTS_FILE", str(empty_results)], kp_opts):
        predictor_cfg = copy.deepcopy(cfg)
        predictor_cfg.merge_from_list(["MODEL.WEIGHTS", weights, *opts])
        with torch.no_grad():
            instances = Pose2SegPredictor(predictor_cfg)(image, file_name=image_file)["instances"]
        assert len(instances) == 0 and instances.pred_masks.shape == (0, *image.shape[:2])
        assert instances.pred_keypoints.shape == (0, 17, 3) and instances.scores.shape == (0,)

    demo = load_demo()
    base = ["--config-file", str(config), "--input", image_file]
    runs = {
        "json": ["--keypoints", str(empty_results)],
        "model": ["--keypoint-config", kp_opts[3], "--keypoint-weights", kp_opts[5]],
    }
    for tag, source in runs.items():
        out = tmp_path / tag
        opts = ["--opts", "MODEL.WEIGHTS", weights] + (["MODEL.POSE2SEG.MIN_PERSON_SCORE", 2.0] if tag == "model" else [])
        assert demo.main([*base, "--output", str(out), *source, *map(str, opts)]) == 0
        written = cv2.imread(str(out / f"{EMPTY_ID:06d}.png"))
        assert np.array_equal(written, image), "an image without persons is written without masks"


# ---------------------------------------------------------------------------- chunks
@pytest.fixture(scope="module")
def templates_file(tmp_path_factory):
    return write_templates(str(tmp_path_factory.mktemp("chunk_templates") / "templates.json"))


def build(architecture, templates_file, chunk):
    """The tiny Pose2Seg, or the same as a ReleasePose2Seg (square inputs, a 2-class head)."""
    opts = ["MODEL.POSE2SEG.TEST_PERSONS_PER_CHUNK", chunk, "MODEL.META_ARCHITECTURE", architecture]
    if architecture == "ReleasePose2Seg":
        opts += ["MODEL.POSE2SEG.RELEASE_INPUT_SIZE", 128, "MODEL.POSE2SEG.SEG_MODULE.NUM_CLASSES", 2]
        # its random head's probabilities stay under 0.5: a lower threshold, for masks to compare
        opts += ["MODEL.POSE2SEG.MASK_THRESHOLD", 0.05]
    return tiny_model(templates_file, *opts)


@pytest.mark.parametrize("architecture", ["Pose2Seg", "ReleasePose2Seg"])
@pytest.mark.parametrize("counts", [(2,), (3,), (7,), (7, 0, 2, 3)])
def test_chunked_inference_equals_all_at_once(templates_file, architecture, counts):
    """Chunks of 3 persons, for fewer persons than a chunk, as many and more, and a batch."""
    batch = [make_input(n, seed) for seed, n in enumerate(counts)]
    outputs, head_batches = {}, []
    for chunk in (0, 3):
        model = build(architecture, templates_file, chunk)
        assert type(model).__name__ == architecture
        sizes = []
        handle = model.head.register_forward_hook(lambda m, args, out: sizes.append(len(args[0])))
        with torch.no_grad():
            outputs[chunk] = [o["instances"] for o in model(copy.deepcopy(batch))]
        handle.remove()
        head_batches.append(sizes)
    total = sum(counts)
    assert head_batches == [[total], [min(3, total - s) for s in range(0, total, 3)]]
    for whole, chunked, n in zip(outputs[0], outputs[3], counts):
        assert len(whole) == len(chunked) == n
        assert torch.equal(whole.pred_masks, chunked.pred_masks)
        assert whole.pred_masks.any() or n == 0
        for field in ("scores", "pred_keypoints"):
            torch.testing.assert_close(whole.get(field), chunked.get(field), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(whole.pred_boxes.tensor, chunked.pred_boxes.tensor)


def test_chunked_inference_syncs_do_not_grow_with_persons(templates_file):
    """More chunks launch more kernels, but read nothing more on the host: still one read."""
    model = tiny_model(templates_file, "MODEL.POSE2SEG.TEST_PERSONS_PER_CHUNK", 3)
    with torch.no_grad():
        model([make_input(3)])
    few, many = count(model, [make_input(2)]), count(model, [make_input(20), make_input(7, 1)])
    assert few.syncs == many.syncs and 1 <= many.total_syncs <= 3, f"{few.report()}\n{many.report()}"
    assert not few.mismatches and not many.mismatches


def test_negative_chunk_is_an_error(templates_file):
    with pytest.raises(ValueError, match="TEST_PERSONS_PER_CHUNK must be >= 0, got -1"):
        tiny_model(templates_file, "MODEL.POSE2SEG.TEST_PERSONS_PER_CHUNK", -1)

