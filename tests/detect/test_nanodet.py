"""NanoDet (COCO 'person') detector: box decoding on synthetic outputs, recall on real GT images, clean scenes.

Measured on the same "visible people" as tests/detect/test_blazepose.py (score threshold 0.3, whole frame): images_gt
recall at IoU 0.5 0.79 (BlazePose: 0.47, 0.76 with 2x2 tiles), mean IoU 0.82; squats clip 1.00 / 0.91; JHMDB
clip 0.78 / 0.71 (its GT boxes leave the head out, so a whole-person box scores low IoU there). The two people
it misses at any threshold in images_gt are Human3.6M frames whose GT boxes are padded squares (best IoU 0.32
and 0.36, BlazePose 0.28 and 0.21).
"""

from __future__ import annotations

import numpy as np
import pytest

from livepose.config import CocoDetectConfig, PipelineConfig
from livepose.detect import Detection, DetectorModelMissing, make_detector
from livepose.detect.base import nms
from livepose.detect.nanodet import INPUT_SIZE, REG_MAX, NanoDetDetector, decode_gfl
from test_blazepose import JHMDB, load_gt, read_rgb, score


@pytest.fixture(scope="module")
def nanodet() -> NanoDetDetector:
    return NanoDetDetector()


def test_gfl_decoding_of_one_hot_distances():
    """A distribution sure of bin k puts that side k strides from the cell centre."""
    stride, n = 16, INPUT_SIZE // 16
    scores = np.zeros(n * n, np.float32)
    cell = 5 * n + 7                                     # row 5, column 7
    scores[cell] = 0.9
    logits = np.full((n * n, 4, REG_MAX + 1), -50.0, np.float32)
    for side, k in enumerate((2, 3, 4, 1)):              # left, top, right, bottom in strides
        logits[cell, side, k] = 50.0
    boxes, kept = decode_gfl(scores, logits.reshape(n * n, -1), stride, 0.5)
    cx, cy = (7 + 0.5) * stride, (5 + 0.5) * stride
    np.testing.assert_allclose(boxes, [[cx - 2 * stride, cy - 3 * stride, cx + 4 * stride, cy + 1 * stride]],
                               atol=1e-3)
    np.testing.assert_allclose(kept, [0.9])


def test_nms_keeps_separate_people_and_drops_duplicates():
    boxes = np.array([[0, 0, 10, 20], [1, 0, 10, 20], [50, 0, 10, 20]], np.float32)
    assert nms(boxes, np.array([0.5, 0.9, 0.4]), 0.5, 10).tolist() == [1, 2]
    assert nms(boxes, np.array([0.5, 0.9, 0.4]), 0.5, 1).tolist() == [1]


def test_missing_model_and_factory(tmp_path):
    with pytest.raises(DetectorModelMissing, match="assets"):
        NanoDetDetector(CocoDetectConfig(model_path=str(tmp_path / "nope.tflite")))
    assert isinstance(make_detector(PipelineConfig(detector="nanodet")), NanoDetDetector)
    with pytest.raises(ValueError, match="unknown detector"):
        make_detector(PipelineConfig(detector="yolo"))


def test_finds_the_people_of_group_photos(shared_data, nanodet):
    """images_gt: 34 visible people in 21 images from 6 datasets, many in groups."""
    result = score(nanodet, load_gt(shared_data, "images_gt/annotations.pose17.json"))
    print(f"\nimages_gt, nanodet: {result}")
    assert result["people"] == 34
    assert result["recall"] >= 0.75 and result["mean_iou"] >= 0.75       # measured 0.79 and 0.82


def test_single_person_clip(shared_data, nanodet):
    result = score(nanodet, load_gt(shared_data, f"{JHMDB}/gt.pose17.json"))
    print(f"\nJHMDB clip, nanodet: {result}")
    assert result["recall"] >= 0.7 and result["crop_coverage"] >= 0.9    # measured 0.78 and 0.975


def test_clean_scenes_and_odd_inputs(shared_data, nanodet):
    background = read_rgb(shared_data / JHMDB / "frames/00001.png")[:, :230]   # goal, grass and trees
    assert nanodet(background) == [] and nanodet(np.full((480, 640, 3), 127, np.uint8)) == []
    image = read_rgb(shared_data / "images_gt/coco_val2017/000000000785.jpg")
    dets = nanodet(image)
    assert len(dets) == 1 and isinstance(dets[0], Detection) and dets[0].keypoints is None
    x, y, w, h = dets[0].box_xywh
    assert 0 <= x and 0 <= y and x + w <= image.shape[1] + 1e-3 and y + h <= image.shape[0] + 1e-3
    assert len(nanodet(image[:, :, 0])) == 1                                   # grey
    with pytest.raises(TypeError, match="uint8"):
        nanodet(image.astype(np.float32))


def test_street_scene_finds_the_crowd_that_blazepose_misses(shared_data, nanodet):
    """First frame of the OpenPose street video: about ten walkers; BlazePose's detector sees one."""
    import cv2

    from livepose.detect.blazepose import BlazePoseDetector

    cap = cv2.VideoCapture(str(shared_data / "videos/openpose_video.avi"))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    people = nanodet(frame)
    assert len(people) >= 8 > len(BlazePoseDetector()(frame))            # measured 11 and 1
    heights = np.array([d.box_xywh[3] for d in people])
    assert (heights > 1.5 * np.array([d.box_xywh[2] for d in people])).mean() >= 0.7  # upright people, not blobs


def test_cli_builds_the_chosen_detector(small_weights):
    import argparse

    from livepose.commands.options import add_model_arguments
    from livepose.pipeline import build_pipeline

    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    pipeline, _ = build_pipeline(parser.parse_args(["--model", str(small_weights), "--detector", "nanodet"]))
    assert isinstance(pipeline.detector, NanoDetDetector) and pipeline.cfg.detector == "nanodet"
