"""What every person detector shares: the ``Detection`` it returns, the ``PersonDetector`` call, the check and
conversion of the input frame, greedy NMS, and the one way a detector opens its LiteRT model.

The detector implementations import this module, never the package's ``__init__`` (which imports the factory, and
the factory imports them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from livepose.crop import box_iou

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detection:
    """One person: an axis-aligned box for the top-down crop, plus what the detector that found them knows besides.

    ``keypoints`` are BlazePose's four alignment points in image pixels (mid-hip, full-body size/rotation point,
    mid-shoulder, upper-body size/rotation point).
    """

    box_xywh: np.ndarray        # (4,) person box, pixels
    score: float
    # BlazePose only (None from box detectors):
    keypoints: np.ndarray | None = None      # (4, 2) pixels
    face_box_xywh: np.ndarray | None = None  # (4,) the raw detector box, pixels
    # pose detectors only (MoveNet MultiPose): the detector's own COCO-17 keypoints, x, y, score; the pipeline
    # compares them with a track's to tell whether a detection is that track's person before it crops anything
    pose: np.ndarray | None = None           # (17, 3) pixels and [0, 1] scores


class PersonDetector(Protocol):
    """Anything that finds people in an RGB uint8 frame."""

    def __call__(self, image_rgb: np.ndarray) -> list[Detection]: ...


class DetectorModelMissing(FileNotFoundError):
    """A detector's model cannot be found (mediapipe not installed, an asset missing, or a wrong path)."""


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Grey (HxW or HxWx1) and RGBA become RGB; anything else but HxWx3 uint8 is refused."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"detector input must be uint8 (0-255), got {image.dtype}")
    if image.ndim < 2 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"detector input must be a non-empty HxW(xC) image, got shape {image.shape}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"detector input must be HxW grey, HxWx3 RGB or HxWx4 RGBA, got shape {image.shape}")
    return image


def nms(boxes_xywh: np.ndarray, scores: np.ndarray, iou_threshold: float, max_out: int) -> np.ndarray:
    """Indices kept by greedy non-max suppression, best score first."""
    order = np.argsort(-scores)
    keep: list[int] = []
    while len(order) and len(keep) < max_out:
        best = order[0]
        keep.append(int(best))
        order = order[1:][box_iou(boxes_xywh[best], boxes_xywh[order[1:]])[0] <= iou_threshold]
    return np.asarray(keep, int)


def open_interpreter(model_path: Path, num_threads: int, missing: str):
    """A detector's LiteRT interpreter (XNNPACK by default; TensorFlow's copy when ai-edge-litert is not installed),
    tensors allocated; ``missing`` says where the file comes from when it is not there."""
    if not model_path.is_file():
        raise DetectorModelMissing(missing)
    try:        # imported here: a LiteRT runtime (or TensorFlow, far heavier) loads only once a detector is built
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf
        Interpreter = tf.lite.Interpreter
        log.info("ai-edge-litert not installed; using tf.lite.Interpreter")
    interp = Interpreter(model_path=str(model_path), num_threads=num_threads)
    interp.allocate_tensors()
    return interp


def open_shipped_model(model_path: str | None, shipped: Path, num_threads: int, name: str) -> tuple[Path, Any, dict]:
    """A converted detector that ships in assets/ (or the file the config names): its path, interpreter and the
    details of its one input, whose shape each detector checks."""
    path = Path(model_path) if model_path else shipped
    interp = open_interpreter(path, num_threads, f"{name} model not found at {path}: it ships in assets/ "
                                                 "(scripts/convert_nanodet.py rebuilds it)")
    return path, interp, interp.get_input_details()[0]
