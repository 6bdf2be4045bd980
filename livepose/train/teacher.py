"""Pseudo-labels from the BlazePose teacher (MediaPipe Pose, full model, shipped in the mediapipe wheel).

Ground truth always wins: the teacher only fills joints a dataset does not label (LSPet has no face), and
only when it agrees with the ground truth it can be checked against, so a teacher that latched onto the wrong
person or hallucinated a pose contributes nothing.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from livepose.skeleton import BLAZEPOSE_TO_COCO, NUM_KEYPOINTS

log = logging.getLogger(__name__)

MIN_TEACHER_SIDE = 384  # LSPet images are ~150 px: upscale so BlazePose's face-based detector fires


class BlazePoseTeacher:
    """MediaPipe Pose in static-image mode, mapped to COCO-17. Model complexity 1 is the one that works offline."""

    def __init__(self, min_detection_confidence: float = 0.3) -> None:
        import mediapipe as mp

        self._pose = mp.solutions.pose.Pose(
            static_image_mode=True, model_complexity=1, min_detection_confidence=min_detection_confidence
        )

    def __call__(self, image_rgb: np.ndarray) -> np.ndarray | None:
        """RGB image -> (17, 3) array of x, y (pixels) and visibility in [0, 1], or None when no person is found."""
        h, w = image_rgb.shape[:2]
        scale = max(1.0, MIN_TEACHER_SIDE / min(h, w))
        img = cv2.resize(image_rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) if scale > 1 else image_rgb
        res = self._pose.process(np.ascontiguousarray(img))
        if res.pose_landmarks is None:
            return None
        lm = res.pose_landmarks.landmark
        out = np.zeros((NUM_KEYPOINTS, 3), np.float32)
        for j, k in enumerate(BLAZEPOSE_TO_COCO):
            out[j] = (lm[k].x * w, lm[k].y * h, lm[k].visibility)
        return out

    def close(self) -> None:
        self._pose.close()


def merge_with_gt(gt: np.ndarray, teacher: np.ndarray | None, bbox_diag: float, min_visibility: float = 0.5,
                  max_disagreement: float = 0.15) -> np.ndarray:
    """Fill the joints ``gt`` leaves unlabelled (v = 0) from ``teacher``; returns (17, 3) with v in {0, 1, 2}.

    The teacher is trusted only if its body joints lie within ``max_disagreement`` x box diagonal (median)
    of the labelled ground truth; with no ground truth to compare (a video frame), any confident joint counts.
    """
    merged = gt.astype(np.float32).copy()
    if teacher is None:
        return merged
    labelled = gt[:, 2] > 0
    merged = fix_side_swaps(merged, teacher, bbox_diag)
    if labelled.sum() >= 4:
        err = np.linalg.norm(teacher[labelled, :2] - merged[labelled, :2], axis=1)
        if np.median(err) > max_disagreement * bbox_diag:
            return merged
    fill = (~labelled) & (teacher[:, 2] >= min_visibility)
    merged[fill, :2] = teacher[fill, :2]
    merged[fill, 2] = 1.0
    return merged


# (left joints, right joints) of each limb chain; LSP-style annotators swap whole chains when unsure which
# way a person faces, so each chain is checked on its own
SIDE_CHAINS: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = (
    ((5, 7, 9), (6, 8, 10)),      # arms
    ((11, 13, 15), (12, 14, 16)),  # legs
)


def fix_side_swaps(gt: np.ndarray, teacher: np.ndarray, bbox_diag: float, ratio: float = 0.5,
                   max_error: float = 0.1) -> np.ndarray:
    """Swap a limb chain's left and right labels where the teacher clearly says they are the other way round.

    A swap counts only when it halves the chain's error against the teacher (``ratio``) and leaves it within
    ``max_error`` x box diagonal: the teacher settles left/right, never the positions themselves.
    """
    out = gt.copy()
    for left, right in SIDE_CHAINS:
        both = list(left) + list(right)
        mirrored = list(right) + list(left)
        if not (gt[both, 2] > 0).all() or not (teacher[both, 2] >= 0.5).all():
            continue
        kept = np.linalg.norm(gt[both, :2] - teacher[both, :2], axis=1).mean()
        swapped = np.linalg.norm(gt[mirrored, :2] - teacher[both, :2], axis=1).mean()
        if swapped < ratio * kept and swapped < max_error * bbox_diag:
            out[both] = gt[mirrored]
    return out
