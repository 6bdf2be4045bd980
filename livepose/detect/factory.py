"""The person-detector factory: one name (``PipelineConfig.detector``) -> a configured detector.

It sits above the detector modules it imports; they import ``base`` (and each other) by module path, never the
factory or a name from the package's ``__init__``, so nothing imports it back.
"""

from __future__ import annotations

from livepose.config import PipelineConfig
from livepose.detect.base import PersonDetector
from livepose.detect.blazepose import BlazePoseDetector
from livepose.detect.fused import FusedDetector
from livepose.detect.multipose import MultiPoseDetector
from livepose.detect.nanodet import NanoDetDetector

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
