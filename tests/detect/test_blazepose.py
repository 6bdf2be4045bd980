"""BlazePose person detector on real GT data: recall, box IoU, crop coverage, empty scenes, odd inputs, speed.

"Visible person" rule (the GT people the detector is scored on): at least 8 labelled keypoints (v > 0) and a
GT box at least 48 px tall. GT boxes are the datasets' own (``bbox`` in the pose17 files; for the JHMDB clip
that is the keypoint box padded 10 %, which leaves the head out). Detections are matched to GT one-to-one by
Hungarian assignment on IoU.

Measured (default config: silhouette refinement on, tiles=1 unless said): JHMDB clip recall@0.5 0.85, mean IoU
0.72, crop coverage 0.975; tfjs squats (pseudo-GT) 1.0 / 0.89 / 1.0; images_gt 0.47 / 0.80 / 0.56, with tiles=2
0.76 / 0.78 / 0.88. Without the refinement (the fixed-aspect box from the alignment points): JHMDB 0.80 / 0.66,
squats 1.0 / 0.62, images_gt tiles=2 0.68 / 0.70. Recall >= 0.9 at IoU 0.5 is not reached, for measured reasons:
* it sees few people in group photos (it is built for one prominent person; the 2x2 tiles help), and
* the GT boxes differ in kind from a silhouette box: JHMDB's leave the head out, Human3.6M's are padded
  squares, and the segmentation model (made for video calls) merges people who touch or misses distant limbs,
  so a share of correct detections sits at IoU 0.3-0.5 (recall at IoU 0.3: JHMDB 0.975, images_gt tiles=2 0.85).
  On the JHMDB clip the GT joints themselves are off the person in some frames: against boxes built the same way
  from MediaPipe's landmarks the recall is 0.95 (see the test on it below).
So the IoU-0.5 recall floors below are regression guards set under the measured figures, and the property the
top-down pipeline actually needs is asserted at 0.9: the padded crop region built from a matched detection
(``crop.box_to_region``) holds >= 90 % of that person's labelled keypoints ("crop coverage"), on the
single-person clips and on images_gt with tiles=2 (0.85 floor there: one person in 34 is 0.03).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from livepose.config import CropConfig, DetectConfig
from livepose.crop import affine_matrix, box_iou, box_to_region, transform_points
from livepose.detect import Detection, DetectorModelMissing, PersonDetector
from livepose.detect.blazepose import (NUM_ANCHORS, BlazePoseDetector, body_roi, default_model_path, mask_box, ssd_anchors,
                                      tile_regions, weighted_nms)


MIN_LABELLED, MIN_HEIGHT = 8, 48        # the "visible person" rule
MATCH_IOU = 0.5
COVER_FRACTION = 0.9                    # a crop "covers" a person when it holds this share of their keypoints
JHMDB = "sequences_gt/jhmdb_goal_keeping_tips_catch_fr_med_2"


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, f"cannot read {path}"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def visible_people(people: list[dict]) -> list[dict]:
    return [p for p in people
            if sum(k[2] > 0 for k in p["keypoints"]) >= MIN_LABELLED and p["bbox"][3] >= MIN_HEIGHT]


def load_gt(root: Path, name: str) -> Iterator[tuple[np.ndarray, list[dict]]]:
    """(RGB image, visible people) for a pose17 file with per-image or per-frame files."""
    path = root / name
    data = json.loads(path.read_text())
    entries = data["images"] if "images" in data else data["frames"]
    return ((read_rgb(path.parent / e["file"]), visible_people(e["people"])) for e in entries)


def load_video_gt(root: Path, name: str, every: int) -> Iterator[tuple[np.ndarray, list[dict]]]:
    """(RGB frame, visible people) for every ``every``-th frame of a pose17 file that names a video."""
    path = root / name
    data = json.loads(path.read_text())
    cap = cv2.VideoCapture(str(path.parent / data["video"]))
    try:
        for i, entry in enumerate(data["frames"]):
            ok, frame = cap.read()
            assert ok, f"{data['video']} ends before frame {i}"
            if i % every == 0:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), visible_people(entry["people"])
    finally:
        cap.release()


def score(detector: PersonDetector, samples: Iterable[tuple[np.ndarray, list[dict]]]) -> dict[str, float]:
    """Recall at IoU 0.5, mean IoU of those matches, and crop coverage, over all visible people."""
    crop_cfg = CropConfig()
    n = hits = covered = 0
    ious = []
    for image, people in samples:
        n += len(people)
        dets = detector(image)
        if not people or not dets:
            continue
        gt = np.array([p["bbox"] for p in people])
        boxes = np.array([d.box_xywh for d in dets])
        iou = box_iou(gt, boxes)
        gi, di = linear_sum_assignment(-iou)
        centres, sizes = box_to_region(boxes, crop_cfg)
        for g, d in zip(gi, di):
            if iou[g, d] >= MATCH_IOU:
                hits += 1
                ious.append(iou[g, d])
            kps = np.array(people[g]["keypoints"], np.float64)
            kps = kps[kps[:, 2] > 0, :2]
            inside = np.all(np.abs(kps - centres[d]) <= sizes[d] / 2, axis=1).mean()
            covered += bool(iou[g, d] > 0 and inside >= COVER_FRACTION)
    return {"people": n, "recall": hits / n, "mean_iou": float(np.mean(ious)) if ious else 0.0,
            "crop_coverage": covered / n}


@pytest.fixture(scope="module")
def detector() -> BlazePoseDetector:
    return BlazePoseDetector(DetectConfig())


@pytest.fixture(scope="module")
def tiled_detector() -> BlazePoseDetector:
    return BlazePoseDetector(DetectConfig(tiles=2))


# ---------------------------------------------------------------- decoding pieces (no data needed)

def test_anchors_match_mediapipe_layout():
    anchors = ssd_anchors()
    assert anchors.shape == (NUM_ANCHORS, 2)
    # stride 8 -> 28x28 cells, 2 anchors each, first cell centre at half a cell
    np.testing.assert_allclose(anchors[:2], [[0.5 / 28, 0.5 / 28]] * 2)
    # three stride-32 layers share one 7x7 map: 6 anchors per cell, last one at the last cell centre
    np.testing.assert_allclose(anchors[-6:], [[6.5 / 7, 6.5 / 7]] * 6)
    assert anchors.min() > 0 and anchors.max() < 1


def test_roi_angle_turns_body_upright_in_the_crop():
    hip = np.array([100.0, 100.0])
    for direction in ([0, -1], [1, 0], [-1, -1], [0.3, 1.0]):
        kp1 = hip + 40 * np.array(direction) / np.linalg.norm(direction)
        points = np.stack([hip, kp1, hip, kp1])[None]
        centre, side, angle = body_roi(points)
        np.testing.assert_allclose(side, [80.0], rtol=1e-6)
        m = affine_matrix(centre[0], np.array([side[0], side[0]]), (64, 64), rotation_deg=float(angle[0]))
        head, hips = transform_points(np.stack([kp1, hip]), m)
        assert head[1] < hips[1] and abs(head[0] - hips[0]) < 1e-6, (direction, angle)


def test_weighted_nms_merges_overlaps_and_keeps_separate_people():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    points = np.repeat(boxes[:, None, :2], 4, axis=1)
    scores = np.array([0.9, 0.3, 0.6], np.float32)
    b, p, s = weighted_nms(boxes, points, scores, iou_threshold=0.3, max_out=10)
    np.testing.assert_allclose(s, [0.9, 0.6])
    np.testing.assert_allclose(b[0], [0.25, 0, 10.25, 10], atol=1e-5)   # 0.75 / 0.25 weighted mean
    assert weighted_nms(boxes, points, scores, 0.3, max_out=1)[2].shape == (1,)


def test_tiles_cover_the_frame():
    regions = tile_regions((480, 640), tiles=2, overlap=0.25)
    assert regions[0] == (0, 0, 640, 480) and len(regions) == 5
    covered = np.zeros((480, 640), bool)
    for x, y, w, h in regions[1:]:
        covered[y:y + h, x:x + w] = True
    assert covered.all()


def test_missing_model_gives_a_clear_error(monkeypatch, tmp_path):
    with pytest.raises(DetectorModelMissing, match="mediapipe"):
        BlazePoseDetector(DetectConfig(model_path=str(tmp_path / "nope.tflite")))
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(DetectorModelMissing, match="mediapipe is not installed"):
        default_model_path()


# ---------------------------------------------------------------- real data

def test_jhmdb_clip_single_person(shared_data, detector):
    """Every frame of the goalkeeper clip (40 frames, 1 person, GT box without the head)."""
    result = score(detector, load_gt(shared_data, f"{JHMDB}/gt.pose17.json"))
    print(f"\nJHMDB clip, tiles=1: {result}")
    assert result["people"] == 40
    assert result["crop_coverage"] >= COVER_FRACTION
    assert result["recall"] >= 0.8           # measured 0.85; see the module docstring for why not 0.9


def test_jhmdb_misses_are_frames_where_the_gt_box_disagrees_with_mediapipe(shared_data, detector):
    """Why the JHMDB clip's recall stays under 0.9: in the frames the detector misses at IoU 0.5, the GT box itself
    disagrees with an independent model's. MediaPipe's landmarks of the same joints, boxed the same way as the
    pose17 GT (joint box padded 10 %), are matched by the detector in >= 90 % of the frames (measured 0.95); the
    GT's joints lie far from the person in some frames (frame 14: arms spread level while the keeper's arms are
    raised; frame 2: the left hip above the shoulders). Measured: the detector misses 6 frames; in 5 of them GT and
    MediaPipe boxes overlap at IoU 0.23-0.48."""
    from livepose.commands.rivals import MediaPipePose
    from livepose.data import keypoint_box

    frames = list(load_gt(shared_data, f"{JHMDB}/gt.pose17.json"))
    with MediaPipePose(tracking=True) as pose:
        landmarks = [pose(image) for image, _ in frames]
    det_gt, det_mp, gt_mp = [], [], []
    for (image, people), found in zip(frames, landmarks):
        assert found is not None, "MediaPipe lost the goalkeeper"
        gt = np.array(people[0]["keypoints"], np.float64)
        mp_box = keypoint_box(np.c_[found[:, :2], gt[:, 2]])[None]     # the same joints as the GT has
        boxes = np.array([d.box_xywh for d in detector(image)]).reshape(-1, 4)
        gt_box = np.array([people[0]["bbox"]])
        det_gt.append(box_iou(gt_box, boxes).max(initial=0.0))
        det_mp.append(box_iou(mp_box, boxes).max(initial=0.0))
        gt_mp.append(box_iou(gt_box, mp_box)[0, 0])
    det_gt, det_mp, gt_mp = map(np.array, (det_gt, det_mp, gt_mp))
    missed = det_gt < MATCH_IOU
    print(f"\nrecall vs GT boxes {1 - missed.mean():.3f}, vs MediaPipe boxes {(det_mp >= MATCH_IOU).mean():.3f}; "
          f"GT-MediaPipe IoU in the missed frames {np.round(gt_mp[missed], 2).tolist()}")
    assert (det_mp >= MATCH_IOU).mean() >= 0.9
    if missed.any():     # where the detector misses, the GT box itself mostly disagrees with MediaPipe
        assert (gt_mp[missed] < MATCH_IOU).mean() >= 0.6


def test_squats_video_pseudo_gt(shared_data, detector):
    """Every 8th frame of the tfjs squats clip (portrait 720x1280); its boxes come from BlazePose-full landmarks
    (model output, not human GT), padded 10 %."""
    result = score(detector, load_video_gt(shared_data, "sequences_pseudo_gt/tfjs_pose_squats/reference.pose17.json",
                                           every=8))
    print(f"\nsquats clip, tiles=1: {result}")
    assert result["people"] == 9
    assert result["recall"] >= 0.88 and result["crop_coverage"] >= COVER_FRACTION   # measured 1.0 and 1.0


def test_images_gt_multi_dataset(shared_data, detector, tiled_detector):
    """21 images from 6 datasets (34 visible people), many of them group photos; tiles find more people."""
    whole = score(detector, load_gt(shared_data, "images_gt/annotations.pose17.json"))
    tiled = score(tiled_detector, load_gt(shared_data, "images_gt/annotations.pose17.json"))
    print(f"\nimages_gt, tiles=1: {whole}\nimages_gt, tiles=2: {tiled}")
    assert whole["people"] == 34
    assert tiled["recall"] > whole["recall"] and tiled["crop_coverage"] > whole["crop_coverage"]
    assert tiled["crop_coverage"] >= 0.85    # measured 0.88
    assert tiled["recall"] >= 0.7            # measured 0.76
    assert whole["recall"] >= 0.4            # measured 0.47


def test_silhouette_refinement_tightens_boxes_on_real_clips(shared_data, detector):
    """The same detections with and without the refinement: boxes fit the GT better, no person is lost."""
    plain = BlazePoseDetector(DetectConfig(refine_boxes=False))
    for name, samples in (("JHMDB", lambda: load_gt(shared_data, f"{JHMDB}/gt.pose17.json")),
                          ("squats", lambda: load_video_gt(
                              shared_data, "sequences_pseudo_gt/tfjs_pose_squats/reference.pose17.json", every=8))):
        refined, fixed = score(detector, samples()), score(plain, samples())
        print(f"\n{name}: refined {refined}\n{name}: fixed aspect {fixed}")
        assert refined["recall"] >= fixed["recall"] and refined["mean_iou"] > fixed["mean_iou"] + 0.03


def test_mask_box_picks_the_silhouette_inside_the_box():
    mask = np.zeros((100, 100), bool)
    mask[20:80, 40:55] = True            # the person
    mask[0:10, 0:100] = True             # something else, outside the detector box
    np.testing.assert_array_equal(mask_box(mask, np.array([30, 10, 70, 90.0]), 0.05), [40, 20, 55, 80])
    assert mask_box(mask, np.array([60, 40, 100, 100.0]), 0.05) is None       # nobody there: keep the box
    assert mask_box(np.zeros((50, 50), bool), np.array([0, 0, 50, 50.0]), 0.05) is None


def test_no_people_gives_no_detections(shared_data, detector, tiled_detector):
    frame = read_rgb(shared_data / JHMDB / "frames/00001.png")
    background = frame[:, :230]              # the goalkeeper stands at x > 240: goal, grass and trees only
    snow = read_rgb(shared_data / "images_gt/coco_val2017/000000000785.jpg")[:, :270]   # left of the skier
    blank = np.full((480, 640, 3), 127, np.uint8)
    for image in (background, snow, blank):
        assert detector(image) == []
        assert len(tiled_detector(image)) <= 1


def test_detection_fields_are_consistent(shared_data, detector):
    image = read_rgb(shared_data / "images_gt/coco_val2017/000000000785.jpg")
    dets = detector(image)
    assert len(dets) == 1
    d = dets[0]
    assert isinstance(d, Detection) and d.score >= detector.cfg.score_threshold
    assert d.keypoints.shape == (4, 2) and d.box_xywh.shape == (4,) and d.face_box_xywh.shape == (4,)
    h, w = image.shape[:2]
    x, y, bw, bh = d.box_xywh
    assert 0 <= x and 0 <= y and x + bw <= w + 1e-3 and y + bh <= h + 1e-3
    hx, hy = d.keypoints[0]                    # the person box is built around the mid-hip point
    assert x <= hx <= x + bw and y <= hy <= y + bh
    fx, fy, fw, fh = d.face_box_xywh           # the face lies in the upper part of the person box
    assert x <= fx + fw / 2 <= x + bw and y <= fy + fh / 2 <= y + bh / 2


def test_grey_rgba_tiny_and_huge_inputs(shared_data, detector):
    image = read_rgb(shared_data / "images_gt/coco_val2017/000000000785.jpg")
    reference = detector(image)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    rgba = cv2.cvtColor(image, cv2.COLOR_RGB2RGBA)
    assert len(detector(rgba)) == len(reference)
    np.testing.assert_allclose(detector(rgba)[0].box_xywh, reference[0].box_xywh)
    assert len(detector(grey)) == len(detector(grey[:, :, None])) == 1
    for tiny in (np.zeros((1, 1, 3), np.uint8), np.zeros((3, 5), np.uint8)):
        assert detector(tiny) == []
    huge = cv2.resize(image, None, fx=6, fy=6, interpolation=cv2.INTER_LINEAR)   # 3840x2550
    big = detector(huge)
    assert len(big) == 1
    assert box_iou(big[0].box_xywh / 6, reference[0].box_xywh)[0, 0] > 0.8
    with pytest.raises(TypeError, match="uint8"):
        detector(image.astype(np.float32))
    for bad in (np.zeros((4, 4, 2), np.uint8), np.zeros((0, 5, 3), np.uint8), np.zeros(7, np.uint8)):
        with pytest.raises(ValueError, match="shape"):
            detector(bad)


def test_time_per_frame(shared_data, detector):
    """Median of 50 calls on a real 640x480 frame (tiles=1); printed for the notes."""
    frame = cv2.resize(read_rgb(shared_data / "images_gt/mpii/052475643.jpg"), (640, 480))
    detector(frame)
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        detector(frame)
        times.append(time.perf_counter() - t0)
    median_ms = 1000 * float(np.median(times))
    print(f"\ndetector, 640x480, tiles=1, {detector.cfg.num_threads} threads: median {median_ms:.1f} ms/frame")
    assert median_ms < 200               # loose: a real-time budget on a busy 2-core CI machine
