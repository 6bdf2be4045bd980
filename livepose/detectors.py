"""The person-detector factory: one name (``PipelineConfig.detector``) -> a configured detector.

Apart from ``detect.py`` (the shared types and BlazePose), which every detector module imports: a factory there
would have to import them back, the cycle this module removes.
"""

from __future__ import annotations

from livepose.config import PipelineConfig
from livepose.detect import BlazePoseDetector, PersonDetector
from livepose.detect_coco import NanoDetDetector
from livepose.detect_fused import FusedDetector
from livepose.detect_multi import MultiPoseDetector

DETECTORS = ("multipose", "blazepose", "nanodet", "fused")


def make_detector(cfg: PipelineConfig) -> PersonDetector:
    """The detector ``cfg.detector`` names, configured from its stage config."""
    if cfg.detector == "blazepose":
        return BlazePoseDetector(cfg.detect)
    if cfg.detector == "nanodet":
        return NanoDetDetector(cfg.coco_detect)
    if cfg.detector == "fused":
        return FusedDetector(cfg)
    if cfg.detector == "multipose":
        return MultiPoseDetector(cfg.multi_detect)
    raise ValueError(f"unknown detector {cfg.detector!r}: choose one of {DETECTORS}")
