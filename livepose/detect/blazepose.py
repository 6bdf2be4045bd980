"""Person detection with the BlazePose detector that ships inside the mediapipe wheel.

The model is an SSD on a 224x224 letterboxed frame. Its box is a *face* box; the person comes from its
four alignment points (mediapipe's ``pose_detection_cpu`` graph): point 0 is the mid-hip centre and
point 1 sets the full-body size and rotation, so a circle of radius |kp1 - kp0| around the hips holds the
body. We decode it the way mediapipe does (SSD anchors, sigmoid scores, weighted NMS, letterbox removal)
and derive an axis-aligned person box from that rotated body square. That box has a fixed aspect, too wide
for someone seen side-on and too narrow for someone with arms out, so by default it is then tightened to the
person's silhouette from mediapipe's selfie segmentation model (also in the wheel), run on the body square.

Any callable with the ``PersonDetector`` signature (``livepose.detect.base``) can replace it in the pipeline.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from livepose.config import DetectConfig
from livepose.crop import box_iou
from livepose.detect.base import Detection, DetectorModelMissing, open_interpreter, to_rgb_uint8

#: Where the models live inside the mediapipe package.
MODEL_SUBPATH = ("modules", "pose_detection", "pose_detection.tflite")
SEGMENTER_SUBPATH = ("modules", "selfie_segmentation", "selfie_segmentation.tflite")
SEGMENTER_SIZE = 256                 # the segmentation model's fixed square input

#: Model geometry, from mediapipe's pose_detection_cpu.pbtxt (SsdAnchorsCalculator and
#: TensorsToDetectionsCalculator options). These describe the fixed network, so they are not config.
INPUT_SIZE = 224
ANCHOR_STRIDES = (8, 16, 32, 32, 32)
ANCHORS_PER_CELL = 2                 # aspect ratio 1.0 plus the interpolated scale, both fixed-size
ANCHOR_OFFSET = 0.5
NUM_ANCHORS = 2254
NUM_ALIGNMENT_POINTS = 4
SCORE_CLIP = 100.0                   # raw logits are clipped to +-this before the sigmoid


def default_model_path(subpath: tuple[str, ...] = MODEL_SUBPATH) -> Path:
    """A model inside the installed mediapipe wheel, found without importing mediapipe (slow)."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorModelMissing(
            f"the person detector's {subpath[-1]} ships inside the mediapipe wheel, and mediapipe is not "
            "installed: pip install -r requirements.txt (or set DetectConfig.model_path)")
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*subpath)


def ssd_anchors() -> np.ndarray:
    """(2254, 2) anchor centres in [0, 1], as mediapipe's SsdAnchorsCalculator builds them.

    With ``fixed_anchor_size`` every anchor is 1x1, so only the centres matter. Consecutive layers with the
    same stride share one feature map and stack their anchors per cell.
    """
    centres = []
    layer = 0
    while layer < len(ANCHOR_STRIDES):
        stride = ANCHOR_STRIDES[layer]
        same = 0
        while layer < len(ANCHOR_STRIDES) and ANCHOR_STRIDES[layer] == stride:
            same += 1
            layer += 1
        cells = int(np.ceil(INPUT_SIZE / stride))
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = (np.stack([xs, ys], axis=-1).reshape(-1, 2) + ANCHOR_OFFSET) / cells
        centres.append(np.repeat(grid, same * ANCHORS_PER_CELL, axis=0))
    anchors = np.concatenate(centres).astype(np.float32)
    assert len(anchors) == NUM_ANCHORS, len(anchors)
    return anchors


def letterbox(image: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit the image into a size x size square, centred, padded black; values scaled to [-1, 1].

    Returns the (size, size, 3) float32 tensor, and the (x, y) scale and offset that map image pixels to
    input pixels: ``p_in = p_img * scale + offset`` (per axis, as the resize rounds each side).
    """
    h, w = image.shape[:2]
    fit = size / max(h, w)
    nw, nh = max(1, round(w * fit)), max(1, round(h * fit))
    interp = cv2.INTER_AREA if fit < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    ox, oy = (size - nw) // 2, (size - nh) // 2
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[oy:oy + nh, ox:ox + nw] = resized
    tensor = canvas.astype(np.float32) * (2.0 / 255.0) - 1.0
    return tensor, np.array([nw / w, nh / h], np.float32), np.array([ox, oy], np.float32)


def decode_raw(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray,
               min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw SSD outputs -> face boxes (N, 4) xyxy, alignment points (N, 4, 2) and scores (N,), in input pixels."""
    logits = np.clip(raw_scores.reshape(-1).astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = scores >= min_score
    raw, anc, scores = raw_boxes.reshape(NUM_ANCHORS, -1)[keep], anchors[keep], scores[keep]
    # Offsets are in input pixels relative to the anchor centre (x/y/w/h scale 224, anchor size 1).
    centre = raw[:, 0:2] + anc * INPUT_SIZE
    half = raw[:, 2:4] / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    points = raw[:, 4:4 + 2 * NUM_ALIGNMENT_POINTS].reshape(-1, NUM_ALIGNMENT_POINTS, 2) + anc[:, None] * INPUT_SIZE
    return boxes, points, scores


def weighted_nms(boxes: np.ndarray, points: np.ndarray, scores: np.ndarray, iou_threshold: float,
                 max_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mediapipe's WEIGHTED non-max suppression: each kept detection is the score-weighted mean of the
    candidates that overlap the best one, which steadies the alignment points between frames."""
    order = np.argsort(-scores)
    boxes, points, scores = boxes[order], points[order], scores[order]
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    out_b, out_p, out_s = [], [], []
    remaining = np.arange(len(scores))          # indices in score order, best first
    while len(remaining) and len(out_s) < max_out:
        best = remaining[0]
        group = np.union1d(remaining[box_iou(xywh[best], xywh[remaining])[0] > iou_threshold], [best])
        w = scores[group] / scores[group].sum()
        out_b.append(np.tensordot(w, boxes[group], axes=1))
        out_p.append(np.tensordot(w, points[group], axes=1))
        out_s.append(scores[best])
        remaining = np.setdiff1d(remaining, group, assume_unique=True)
    if not out_s:
        return np.zeros((0, 4), np.float32), np.zeros((0, NUM_ALIGNMENT_POINTS, 2), np.float32), np.zeros(0, np.float32)
    return np.asarray(out_b, np.float32), np.asarray(out_p, np.float32), np.asarray(out_s, np.float32)


def body_roi(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Alignment points (N, 4, 2) -> mediapipe's full-body ROI: centres (N, 2), sides (N,), angles (N,) deg.

    The angle rotates the image so that hip -> kp1 points up (AlignmentPointsRectsCalculator, target 90 deg).
    """
    centre = points[:, 0]
    vec = points[:, 1] - points[:, 0]
    side = 2.0 * np.linalg.norm(vec, axis=1)
    # Image y grows downwards; an upright person has vec = (0, -r) and angle 0.
    angle = 90.0 - np.degrees(np.arctan2(-vec[:, 1], vec[:, 0]))
    angle = (angle + 180.0) % 360.0 - 180.0
    return centre, side, angle


def person_boxes(centres: np.ndarray, sides: np.ndarray, angles_deg: np.ndarray, cfg: DetectConfig) -> np.ndarray:
    """Axis-aligned (N, 4) xyxy boxes around the rotated body rectangles (not clipped to the image).

    The rectangle is centred on the hips, ``box_scale * side`` long along the body axis and ``box_aspect``
    times that across it.
    """
    length = cfg.box_scale * sides
    width = cfg.box_aspect * length
    theta = np.radians(angles_deg)
    c, s = np.abs(np.cos(theta)), np.abs(np.sin(theta))
    half = np.stack([c * width + s * length, s * width + c * length], axis=1) / 2.0
    return np.concatenate([centres - half, centres + half], axis=1).astype(np.float32)


def clip_xyxy_to_xywh(boxes: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """Clip (N, 4) xyxy boxes to the image and return them as xywh."""
    h, w = image_hw
    lo = np.clip(boxes[:, :2], 0, [w, h])
    hi = np.clip(boxes[:, 2:], 0, [w, h])
    return np.concatenate([lo, hi - lo], axis=1).astype(np.float32)


def mask_box(mask: np.ndarray, box_xyxy: np.ndarray, min_fill: float) -> np.ndarray | None:
    """The xyxy box of the mask component that fills most of ``box_xyxy`` (both in mask pixels).

    None when no component covers ``min_fill`` of the box: the mask missed the person, keep the box.
    """
    n, labels, comp, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
    h, w = mask.shape
    x0, x1 = np.clip(np.round(box_xyxy[[0, 2]]), 0, w).astype(int)
    y0, y1 = np.clip(np.round(box_xyxy[[1, 3]]), 0, h).astype(int)
    counts = np.bincount(labels[y0:y1, x0:x1].ravel(), minlength=n)
    counts[0] = 0                                                     # background
    k = int(counts.argmax())
    if counts[k] == 0 or counts[k] < min_fill * (x1 - x0) * (y1 - y0):
        return None
    x, y, bw, bh = comp[k, :4]
    return np.array([x, y, x + bw, y + bh], np.float32)


class SilhouetteRefiner:
    """Tightens person boxes to the silhouette found by the selfie segmentation model in each body square."""

    def __init__(self, cfg: DetectConfig) -> None:
        self.cfg = cfg
        path = default_model_path(SEGMENTER_SUBPATH)
        self._interp = open_interpreter(
            path, cfg.num_threads, f"selfie segmentation model not found at {path}; it ships in the mediapipe "
            "wheel (pip install -r requirements.txt), or set DetectConfig.refine_boxes=False")
        self._input_index = self._interp.get_input_details()[0]["index"]
        self._output_index = self._interp.get_output_details()[0]["index"]

    def __call__(self, image: np.ndarray, centres: np.ndarray, sides: np.ndarray, boxes_xyxy: np.ndarray
                 ) -> np.ndarray:
        """(N, 4) xyxy boxes, each replaced by its silhouette's box where the mask found the person."""
        out = boxes_xyxy.copy()
        size = SEGMENTER_SIZE
        for i, (centre, side) in enumerate(zip(centres, sides)):
            scale = size / max(float(side) * self.cfg.mask_grow, 1.0)
            offset = size / 2 - scale * centre
            mat = np.array([[scale, 0, offset[0]], [0, scale, offset[1]]], np.float32)
            crop = cv2.warpAffine(image, mat, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            self._interp.set_tensor(self._input_index, (crop.astype(np.float32) / 255.0)[None])
            self._interp.invoke()
            mask = self._interp.get_tensor(self._output_index)[0, :, :, 0] > self.cfg.mask_threshold
            box = mask_box(mask, boxes_xyxy[i] * scale + np.tile(offset, 2), self.cfg.mask_min_fill)
            if box is not None:
                out[i] = (box - np.tile(offset, 2)) / scale
        return out


def tile_regions(image_hw: tuple[int, int], tiles: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) views to run: the whole frame, plus a tiles x tiles grid of overlapping tiles."""
    h, w = image_hw
    regions = [(0, 0, w, h)]
    if tiles <= 1:
        return regions
    tw = min(w, int(np.ceil(w / tiles * (1.0 + overlap))))
    th = min(h, int(np.ceil(h / tiles * (1.0 + overlap))))
    xs = np.linspace(0, w - tw, tiles).round().astype(int)
    ys = np.linspace(0, h - th, tiles).round().astype(int)
    regions += [(int(x), int(y), tw, th) for y in ys for x in xs]
    return regions


class BlazePoseDetector:
    """The BlazePose person detector (mediapipe's pose_detection.tflite) behind the ``PersonDetector`` call."""

    def __init__(self, cfg: DetectConfig = DetectConfig()):
        self.cfg = cfg
        path = Path(cfg.model_path) if cfg.model_path else default_model_path()
        self._interp = open_interpreter(
            path, cfg.num_threads, f"BlazePose detector model not found at {path}: it ships in the mediapipe wheel "
            "(pip install -r requirements.txt) or set DetectConfig.model_path")
        inp = self._interp.get_input_details()[0]
        if tuple(inp["shape"]) != (1, INPUT_SIZE, INPUT_SIZE, 3) or inp["dtype"] != np.float32:
            raise ValueError(f"{path}: expected a float32 1x{INPUT_SIZE}x{INPUT_SIZE}x3 input, got "
                             f"{inp['dtype'].__name__} {tuple(inp['shape'])}")
        self._input_index = inp["index"]
        outs = {int(d["shape"][-1]): d["index"] for d in self._interp.get_output_details()}
        self._boxes_index, self._scores_index = outs[4 + 2 * NUM_ALIGNMENT_POINTS], outs[1]
        self._anchors = ssd_anchors()
        self._refine = SilhouetteRefiner(cfg) if cfg.refine_boxes else None

    def _run_view(self, image: np.ndarray, region: tuple[int, int, int, int]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One forward pass on a region (x, y, w, h); face boxes (xyxy), points and scores in image pixels."""
        x, y, w, h = region
        tensor, scale, offset = letterbox(image[y:y + h, x:x + w])
        self._interp.set_tensor(self._input_index, tensor[None])
        self._interp.invoke()
        boxes, points, scores = decode_raw(self._interp.get_tensor(self._boxes_index)[0],
                                           self._interp.get_tensor(self._scores_index)[0],
                                           self._anchors, self.cfg.score_threshold)
        origin = np.array([x, y], np.float32)
        boxes = (boxes - np.tile(offset, 2)) / np.tile(scale, 2) + np.tile(origin, 2)
        points = (points - offset) / scale + origin
        return boxes, points, scores

    def __call__(self, image_rgb: np.ndarray) -> list[Detection]:
        image = to_rgb_uint8(image_rgb)
        hw = image.shape[:2]
        found_b, found_p, found_s = [], [], []
        for region in tile_regions(hw, self.cfg.tiles, self.cfg.tile_overlap):
            boxes, points, scores = self._run_view(image, region)
            found_b.append(boxes)
            found_p.append(points)
            found_s.append(scores)
        boxes, points, scores = weighted_nms(np.concatenate(found_b), np.concatenate(found_p),
                                             np.concatenate(found_s), self.cfg.nms_iou, self.cfg.max_people)
        centres, sides, angles = body_roi(points)
        boxes_xyxy = person_boxes(centres, sides, angles, self.cfg)
        if self._refine is not None:
            boxes_xyxy = self._refine(image, centres, sides, boxes_xyxy)
        person = clip_xyxy_to_xywh(boxes_xyxy, hw)
        face = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        return [Detection(box_xywh=person[i], score=float(scores[i]), keypoints=points[i], face_box_xywh=face[i])
                for i in range(len(scores))]
