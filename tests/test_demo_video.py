"""demo.py --video-input: a video in, the same frames out with the persons drawn, each in its color
from frame to frame; persons below the confidence threshold not drawn; bad videos."""
import json
import os

import cv2
import numpy as np
import pytest
import torch
from detectron2.modeling import build_model

from pose2seg_d2.engine import Pose2SegPredictor

from .fixtures import STANDING, draw_person, tiny_pose2seg_cfg, write_templates
from .test_demo import changed, load_demo, skeleton_zone

SIZE = (96, 128)
FPS = 12.0
NUM_FRAMES = 4
# persons A and B are drawn; their scores swap from frame to frame, so their order does too
# (instances come sorted by score); C scores below the default confidence threshold
SCORES = {"A": (0.9, 0.8), "B": (0.8, 0.9), "C": (0.1, 0.1)}
STARTS = {"C": 2.0, "A": 48.0, "B": 86.0}  # x of each person's box; C left of the others' labels
FRAME_WITHOUT_ENTRIES = NUM_FRAMES - 1


def person_keypoints(name, k):
    xy = STANDING * [0.5 * 64, 64] + [STARTS[name] + k, 14 + 0.5 * k]
    return np.concatenate([xy, np.full((17, 1), 2.0)], 1)


def make_frames():
    """The frames (BGR): a smooth background and three light figures walking right."""
    y, x = np.mgrid[: SIZE[0], : SIZE[1]]
    background = np.stack([40 + 0.3 * x, 50 + 0.2 * y, 60 + 0.1 * (x + y)], -1).astype(np.uint8)
    frames = []
    for k in range(NUM_FRAMES):
        canvas = background.copy()
        for name in STARTS:
            draw_person(canvas, person_keypoints(name, k), (205, 205, 205), thickness=5)
        frames.append(canvas)
    return frames


def write_video(path, frames, fourcc="mp4v", fps=FPS):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (frames[0].shape[1], frames[0].shape[0]))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()


def read_video(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = capture.read()
        if not ok:
            break
        frames.append(f)
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return frames, fps


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("video")
    write_video(root / "walk.mp4", make_frames())
    entries = [
        {"image_id": k, "category_id": 1, "keypoints": person_keypoints(name, k).reshape(-1).tolist(),
         "score": SCORES[name][k % 2]}
        for k in range(NUM_FRAMES) if k != FRAME_WITHOUT_ENTRIES for name in STARTS
    ]  # fmt: skip
    (root / "results.json").write_text(json.dumps(entries))
    cfg = tiny_pose2seg_cfg(str(root / "out"), "unused", "unused", write_templates(str(root / "templates.json")))
    cfg.DATASETS.TEST = ()
    (root / "pose2seg.yaml").write_text(cfg.dump())
    torch.manual_seed(0)
    torch.save({"model": build_model(cfg).state_dict()}, root / "pose2seg.pth")
    # the masks scored by the persons' scores alone, so that which are drawn is known
    opts = ["MODEL.WEIGHTS", str(root / "pose2seg.pth"), "MODEL.POSE2SEG.SCORE", "person"]
    return {"video": root / "walk.mp4", "results": str(root / "results.json"), "config": str(root / "pose2seg.yaml"),
            "opts": opts}  # fmt: skip


def video_args(setup, video, output, *extra):
    return ["--config-file", setup["config"], "--video-input", str(video), "--output", str(output),
            "--keypoints", setup["results"], *extra, "--opts", *setup["opts"]]  # fmt: skip


def recording(demo, monkeypatch):
    """The (frame, instances) demo.py draws, in order."""
    draw, seen = demo.draw, []

    def recording_draw(image, instances, *args):
        seen.append((image.copy(), instances))
        return draw(image, instances, *args)

    monkeypatch.setattr(demo, "draw", recording_draw)
    return seen


def by_name(instances):
    """The persons of a frame by name, told apart by where their keypoints are."""
    x = instances.pred_keypoints[:, :, 0].mean(1)
    return {name: int(torch.argmin((x - (STARTS[name] + 16)).abs())) for name in STARTS}


def test_video_comes_out_with_every_frame_and_each_person_in_one_color(setup, tmp_path, logs, monkeypatch):
    demo = load_demo()
    seen = recording(demo, monkeypatch)
    out = tmp_path / "drawn.mkv"  # lossless (FFV1): the pixels as drawn
    assert demo.main(video_args(setup, setup["video"], out)) == 0
    frames, _ = read_video(setup["video"])
    drawn, fps = read_video(out)
    assert len(frames) == NUM_FRAMES and len(drawn) == NUM_FRAMES and fps == FPS
    assert all(d.shape == (*SIZE, 3) for d in drawn)
    assert f"1 of {NUM_FRAMES} frames have no entries" in logs.text
    assert f"frame index: {FRAME_WITHOUT_ENTRIES})" in logs.text
    assert len(seen) == NUM_FRAMES and all(np.array_equal(f, s) for f, (s, _) in zip(frames, seen))

    colors = {"A": [], "B": []}
    for k, (frame, out_frame, (_, instances)) in enumerate(zip(frames, drawn, seen)):
        if k == FRAME_WITHOUT_ENTRIES:
            assert len(instances) == 0 and changed(out_frame, frame).mean() < 0.002, "drawn without masks"
            continue
        assert len(instances) == 3
        who = by_name(instances)
        masks = instances.pred_masks.numpy()
        assert instances.scores[who["C"]] < 0.5 <= instances.scores[who["A"]].item()
        assert [who["A"], who["B"]] == ([0, 1] if k % 2 == 0 else [1, 0])  # the order swaps
        drawn_ones = masks[[who["A"], who["B"]]]
        skeletons = skeleton_zone([{"keypoints": person_keypoints(n, k).reshape(-1)} for n in ("A", "B")], SIZE)
        for name in ("A", "B"):
            mask = masks[who[name]]
            others = masks[[i for i in range(3) if i != who[name]]].any(0)
            inside = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~others & ~skeletons
            assert inside.sum() >= 40, f"frame {k}, {name}: {inside.sum()} pixels to test"
            assert changed(out_frame, frame)[inside].mean() > 0.9, f"frame {k}: {name}'s mask is not drawn"
            # drawn = (under + color) / 2
            colors[name].append(np.median(2 * out_frame[inside].astype(int) - frame[inside].astype(int), axis=0))
        # C, below the threshold: unchanged, but where A's and B's masks, skeletons and labels
        # (right of their boxes' left edges) are
        near = cv2.dilate(drawn_ones.any(0).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool) | skeletons
        near[:, int(instances.pred_boxes.tensor[[who["A"], who["B"]], 0].min()) - 2 :] = True
        region = masks[who["C"]] & ~near
        assert region.sum() >= 40, f"frame {k}: {region.sum()} pixels of C to test"
        assert changed(out_frame, frame)[region].mean() < 0.01, f"frame {k}: C is drawn"
    for name, seen in colors.items():
        assert np.abs(np.array(seen) - seen[0]).max() <= 16, f"{name}'s color changes: {seen}"
    assert np.abs(colors["A"][0] - colors["B"][0]).max() > 40, "A and B have one color"


def test_video_into_a_folder_and_the_old_threshold_flag(setup, tmp_path, logs, monkeypatch):
    """--output a folder gives <stem>.mp4 of the same frame rate and size; --score-threshold
    (deprecated) still sets the threshold: at 0.05 C is drawn too."""
    clip = tmp_path / "clip.avi"
    write_video(clip, make_frames()[:2], fourcc="MJPG", fps=25.0)
    demo = load_demo()
    seen = recording(demo, monkeypatch)
    out = tmp_path / "out"
    assert demo.main(video_args(setup, clip, out, "--score-threshold", "0.05")) == 0
    assert "--score-threshold is deprecated" in logs.text
    assert os.listdir(out) == ["clip.mp4"]
    drawn, fps = read_video(out / "clip.mp4")
    frames, _ = read_video(clip)
    assert len(drawn) == 2 and fps == 25.0 and drawn[0].shape == (*SIZE, 3)
    instances = seen[0][1]
    c = instances.pred_masks[by_name(instances)["C"]].numpy()
    inside = cv2.erode(c.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    inside &= ~skeleton_zone([{"keypoints": person_keypoints("C", 0).reshape(-1)}], SIZE)
    assert inside.sum() >= 40 and changed(drawn[0], frames[0], tolerance=12)[inside].mean() > 0.9


def test_a_frame_that_does_not_decode_ends_the_video_there(setup, tmp_path, logs):
    lossless = tmp_path / "walk.mkv"
    write_video(lossless, make_frames(), fourcc="FFV1")
    data = lossless.read_bytes()
    truncated = tmp_path / "truncated.mkv"
    truncated.write_bytes(data[: int(0.6 * len(data))])
    decodable, _ = read_video(truncated)
    capture = cv2.VideoCapture(str(truncated))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == NUM_FRAMES and 0 < len(decodable) < NUM_FRAMES
    capture.release()
    demo = load_demo()
    out = tmp_path / "out.mkv"
    assert demo.main(video_args(setup, truncated, out)) == 1
    assert f"frame {len(decodable)} could not be decoded" in logs.text
    assert f"the video ends there, after {len(decodable)} frames" in logs.text
    assert len(read_video(out)[0]) == len(decodable)


def test_frames_that_fail_later_end_the_video_with_what_was_written(setup, tmp_path, logs):
    """segment_video with frames whose decoding fails at frame 2."""
    from pose2seg_d2.visualization import FrameDecodeError, VideoSink

    demo = load_demo()
    frames, _ = read_video(setup["video"])
    frames = frames[:2]

    def failing():
        yield from frames
        raise FrameDecodeError(2, "corrupt data")

    args = demo.parse_args(video_args(setup, setup["video"], tmp_path / "x.mkv"))
    predictor = Pose2SegPredictor(demo.setup_cfg(args))
    sink = VideoSink(str(tmp_path / "x.mkv"), FPS)
    try:
        assert demo.segment_video(predictor, failing(), sink, 0.5, "clip.mp4", NUM_FRAMES) == 1
    finally:
        sink.close()
    assert "clip.mp4: frame 2 could not be decoded (corrupt data)" in logs.text
    assert len(read_video(tmp_path / "x.mkv")[0]) == 2


@pytest.mark.parametrize("kind", ["missing", "not a video"])
def test_unreadable_video_exits_2_naming_it(setup, tmp_path, capsys, kind):
    video = tmp_path / "clip.mp4"
    if kind == "not a video":
        video.write_text("hello")
    demo = load_demo()
    assert demo.main(video_args(setup, video, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert str(video) in err and ("no such file" if kind == "missing" else "cannot be read as a video") in err
    assert not (tmp_path / "out").exists()


def test_video_output_of_an_unknown_kind_exits_2(setup, tmp_path, capsys):
    demo = load_demo()
    assert demo.main(video_args(setup, setup["video"], tmp_path / "out.gif")) == 2
    assert "out.gif" in capsys.readouterr().err


def test_webcam_frames_are_written_to_output(setup, tmp_path, monkeypatch, capsys):
    """--webcam reads device 0 (here a clip in its place); this OpenCV has no window, so it
    needs --output, and writes the frames there."""
    clip = tmp_path / "clip.avi"
    write_video(clip, make_frames()[:2], fourcc="MJPG", fps=25.0)
    demo = load_demo()
    real = cv2.VideoCapture
    monkeypatch.setattr(demo.cv2, "VideoCapture", lambda device: real(str(clip)) if device == 0 else real(device))
    monkeypatch.setattr(demo, "_has_window", lambda: False)
    args = ["--config-file", setup["config"], "--webcam", "--keypoints", setup["results"], "--opts", *setup["opts"]]
    assert demo.main(args) == 2 and "give --output" in capsys.readouterr().err
    out = tmp_path / "webcam.mkv"
    assert demo.main(args[:3] + ["--output", str(out)] + args[3:]) == 0
    drawn, fps = read_video(out)
    assert len(drawn) == 2 and fps == 25.0 and changed(drawn[0], read_video(clip)[0][0]).mean() > 0.01
