"""Top-down geometry: person box -> fixed-aspect region -> affine warp to the network input, and back.

One module for crop and un-crop (as in the official ``transforms.py``), so training, inference and
evaluation cannot disagree on a pixel convention. Regions are in pixels (centre, width/height), never in
the official code's hidden 200-px units.
"""

from __future__ import annotations

import cv2
import numpy as np

from livepose.config import CropConfig


def box_to_region(boxes_xywh: np.ndarray, cfg: CropConfig = CropConfig()) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) boxes -> centres (N, 2) and sizes (N, 2) with aspect ``cfg.aspect`` and ``cfg.padding`` context."""
    boxes = np.asarray(boxes_xywh, np.float32).reshape(-1, 4)
    centres = boxes[:, :2] + boxes[:, 2:] / 2.0
    w, h = boxes[:, 2].copy(), boxes[:, 3].copy()
    wide = w > cfg.aspect * h
    h[wide] = w[wide] / cfg.aspect
    w[~wide] = h[~wide] * cfg.aspect
    sizes = np.stack([w, h], axis=1) * cfg.padding
    return centres, np.maximum(sizes, 1.0)


def affine_matrix(centre: np.ndarray, size: np.ndarray, output_hw: tuple[int, int], rotation_deg: float = 0.0,
                  inverse: bool = False) -> np.ndarray:
    """2x3 matrix mapping the region (centre, size (w, h), rotated) onto an output of ``output_hw``.

    The region centre lands on (out_w / 2, out_h / 2), the official SimpleBaseline convention.
    """
    out_h, out_w = output_hw
    scale = out_w / float(size[0])
    theta = np.deg2rad(rotation_deg)
    rot = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]], np.float64) * scale
    shift = np.array([out_w / 2.0, out_h / 2.0]) - rot @ np.asarray(centre, np.float64)
    m = np.hstack([rot, shift[:, None]])
    return cv2.invertAffineTransform(m) if inverse else m


def warp_crops(image: np.ndarray, centres: np.ndarray, sizes: np.ndarray, output_hw: tuple[int, int],
               out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cut one crop per region. Returns crops (N, h, w, C) and the forward matrices (N, 2, 3).

    ``out`` lets a caller reuse one buffer across frames (no per-frame allocation on the hot path).
    """
    n = len(centres)
    h, w = output_hw
    if out is None or out.shape[0] < n:
        out = np.empty((n, h, w, image.shape[2]), image.dtype)
    mats = np.empty((n, 2, 3), np.float64)
    for i in range(n):
        mats[i] = affine_matrix(centres[i], sizes[i], output_hw)
        cv2.warpAffine(image, mats[i], (w, h), dst=out[i], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return out[:n], mats


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (..., 2) points."""
    pts = np.asarray(points, np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def keypoints_to_box(keypoints: np.ndarray, scores: np.ndarray, min_score: float) -> np.ndarray | None:
    """Tight (x, y, w, h) box around the confident keypoints, or None when fewer than 2 are confident."""
    good = keypoints[scores >= min_score]
    if len(good) < 2:
        return None
    lo, hi = good.min(axis=0), good.max(axis=0)
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]], np.float32)


def expand_keypoint_box(box: np.ndarray, factor: float = 1.2, min_size: float = 8.0) -> np.ndarray:
    """Grow a keypoint box around its centre: keypoints sit inside the body, the box must hold all of it."""
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    w, h = max(box[2] * factor, min_size), max(box[3] * factor, min_size)
    return np.array([cx - w / 2, cy - h / 2, w, h], np.float32)


def _intersection(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, M) intersection areas of (N, 4) and (M, 4) xywh boxes, and the boxes as float64 arrays."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2) - np.maximum(a[:, None, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2) - np.maximum(a[:, None, 1], b[:, 1]), 0, None)
    return iw * ih, a, b


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between (N, 4) and (M, 4) xywh boxes."""
    inter, a, b = _intersection(a, b)
    union = (a[:, 2] * a[:, 3])[:, None] + b[:, 2] * b[:, 3] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def box_coverage(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M): the share of each box of ``a`` that lies inside each box of ``b`` (0 for an empty box)."""
    inter, a, _ = _intersection(a, b)
    area = (a[:, 2] * a[:, 3])[:, None]
    return np.where(area > 0, inter / np.maximum(area, 1e-12), 0.0)
