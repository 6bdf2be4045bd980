"""Person detectors: find the people in a frame, for the pose network to crop.

``base`` holds what they share (``Detection``, the ``PersonDetector`` call, the model loader); ``blazepose``,
``nanodet``, ``multipose`` (the default) and ``fused`` are the detectors; ``factory`` builds the one a
``--detector`` name asks for. The detector modules import ``base`` (and each other) by module path, never a name
from this package, so the factory imported here closes no cycle.
"""

from livepose.detect.base import Detection, DetectorModelMissing, PersonDetector
from livepose.detect.factory import DETECTORS, make_detector

__all__ = ["DETECTORS", "Detection", "DetectorModelMissing", "PersonDetector", "make_detector"]
