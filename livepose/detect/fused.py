"""Both detectors at once, for recall in group photos: NanoDet's boxes, plus BlazePose's where NanoDet saw nobody.

NanoDet's scores are IoU-aware, so people it sees small, side-on or half hidden score under its threshold;
BlazePose's face-anchored detector, run on the whole frame and a 2x2 grid of tiles, finds many of those. On
images_gt NanoDet alone finds 0.79 of the visible people at IoU 0.5, tiled BlazePose 0.76, the two together
0.91. NanoDet's boxes fit tighter (mean IoU 0.82), so a BlazePose box is added only where it overlaps no
NanoDet box by more than ``overlap_iou``. A call costs both detectors' time (BlazePose five times, for the
tiles), which the tracker pays only on the frames where it runs the detector.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from livepose.config import PipelineConfig
from livepose.crop import box_iou
from livepose.detect.base import Detection
from livepose.detect.blazepose import BlazePoseDetector
from livepose.detect.nanodet import NanoDetDetector


class FusedDetector:
    def __init__(self, cfg: PipelineConfig = PipelineConfig()) -> None:
        self.cfg = cfg.fused_detect
        self.primary = NanoDetDetector(cfg.coco_detect)
        self.secondary = BlazePoseDetector(replace(cfg.detect, tiles=self.cfg.blazepose_tiles))

    def __call__(self, image_rgb: np.ndarray) -> list[Detection]:
        first = self.primary(image_rgb)
        second = self.secondary(image_rgb)
        if first and second:
            overlap = box_iou(np.array([d.box_xywh for d in second]), np.array([d.box_xywh for d in first])).max(1)
            second = [d for d, o in zip(second, overlap) if o <= self.cfg.overlap_iou]
        return (first + second)[: self.cfg.max_people]
