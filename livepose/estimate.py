"""Top-down pose estimation for a batch of boxes in one frame: crop -> network -> decode -> back-project.

Stateless, so the pipeline, the evaluator and the benchmark share it. All crops of a frame go through the
network as one batch; the crop buffer is reused across frames.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from livepose.config import CropConfig, DecodeConfig
from livepose.crop import box_to_region, warp_crops
from livepose.decode import decode_heatmaps, flip_heatmaps, heatmap_to_image
from livepose.nets.protocol import PoseNetwork


@dataclass
class Estimate:
    keypoints: np.ndarray                  # (N, 17, 2) image pixels
    scores: np.ndarray                     # (N, 17) heatmap peaks x the weights' score_scale, clipped to [0, 1]
    timings_ms: dict[str, float] = field(default_factory=dict)


class PoseEstimator:
    def __init__(self, net: PoseNetwork, crop_cfg: CropConfig = CropConfig(),
                 decode_cfg: DecodeConfig = DecodeConfig()) -> None:
        self.net = net
        self.crop_cfg = crop_cfg
        self.decode_cfg = decode_cfg
        self._buffer: np.ndarray | None = None
        self.num_joints = net.num_joints

    def __call__(self, image_rgb: np.ndarray, boxes_xywh: np.ndarray) -> Estimate:
        boxes = np.asarray(boxes_xywh, np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            j = self.num_joints
            return Estimate(np.zeros((0, j, 2), np.float32), np.zeros((0, j), np.float32),
                            {"crop": 0.0, "infer": 0.0, "decode": 0.0})
        t0 = time.perf_counter()
        centres, sizes = box_to_region(boxes, self.crop_cfg)
        if self._buffer is None or len(self._buffer) < len(boxes):
            self._buffer = np.empty((max(len(boxes), 8), *self.net.input_size, 3), np.uint8)
        crops, _ = warp_crops(image_rgb, centres, sizes, self.net.input_size, out=self._buffer)
        t1 = time.perf_counter()
        if self.decode_cfg.flip_test:
            # one call for the crops and their mirrors: a batch of 2N costs less than two batches of N
            both = self.net(np.concatenate([crops, crops[:, :, ::-1]]))
            heatmaps = 0.5 * (both[: len(boxes)] + flip_heatmaps(both[len(boxes):]))
        else:
            heatmaps = self.net(crops)
        t2 = time.perf_counter()
        coords, scores = decode_heatmaps(heatmaps, self.decode_cfg)
        scores = np.minimum(scores * self.net.score_scale, 1.0)
        keypoints = heatmap_to_image(coords, centres, sizes, self.net.heatmap_size)
        t3 = time.perf_counter()
        return Estimate(keypoints, scores, {"crop": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3,
                                            "decode": (t3 - t2) * 1e3})
