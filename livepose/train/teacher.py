"""Pseudo-labels from a teacher: MoveNet Thunder (assets/movenet_thunder.tflite, the default) or BlazePose
(MediaPipe Pose full, shipped in the mediapipe wheel).

Ground truth always wins: the teacher only fills joints a dataset does not label (LSPet has no face), and
only when it agrees with the ground truth it can be checked against, so a teacher that latched onto the wrong
person or hallucinated a pose contributes nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from livepose.skeleton import BLAZEPOSE_TO_COCO, NUM_KEYPOINTS

log = logging.getLogger(__name__)

MIN_TEACHER_JOINTS = 6  # a teacher pose with fewer confident joints is not trusted as a person
MIN_TEACHER_SIDE = 384  # LSPet images are ~150 px: upscale so BlazePose's face-based detector fires


class BlazePoseTeacher:
    """MediaPipe Pose in static-image mode, mapped to COCO-17. Model complexity 1 is the one that works offline."""

    def __init__(self, min_detection_confidence: float = 0.3) -> None:
        import mediapipe as mp  # heavy (its graphs and runtime): only when this teacher labels

        self._pose = mp.solutions.pose.Pose(
            static_image_mode=True, model_complexity=1, min_detection_confidence=min_detection_confidence
        )

    def __call__(self, image_rgb: np.ndarray, box_xywh: np.ndarray | None = None) -> np.ndarray | None:
        """RGB image -> (17, 3) array of x, y (pixels) and visibility in [0, 1], or None when no person is found.

        BlazePose finds its person itself, so ``box_xywh`` is not used.
        """
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


class MoveNetTeacher:
    """MoveNet Thunder on a person box; without a box, MoveNet's own two-step search for the person."""

    def __init__(self, model_path: Path | None = None, min_score: float = 0.3) -> None:
        from livepose.movenet import MOVENET_MODEL, MoveNetThunder

        self._net = MoveNetThunder(model_path or MOVENET_MODEL)
        self.min_score = min_score

    def __call__(self, image_rgb: np.ndarray, box_xywh: np.ndarray | None = None) -> np.ndarray | None:
        """(17, 3): x, y (pixels) and MoveNet's score, or None when it finds too few confident joints."""
        if box_xywh is None:
            return self._net.find(image_rgb, min_score=self.min_score, min_joints=MIN_TEACHER_JOINTS)
        kps = self._net(image_rgb, np.asarray(box_xywh, np.float32)[None])[0]
        return kps if (kps[:, 2] >= self.min_score).sum() >= MIN_TEACHER_JOINTS else None


TEACHERS = {"movenet": MoveNetTeacher, "blazepose": BlazePoseTeacher}


def merge_with_gt(gt: np.ndarray, teacher: np.ndarray | None, bbox_diag: float, min_visibility: float = 0.3,
                  max_disagreement: float = 0.15) -> np.ndarray:
    """Fill the joints ``gt`` leaves unlabelled (v = 0) from ``teacher``; returns (17, 3).

    v stays 1 or 2 where ground truth labels a joint; a filled joint's v is the teacher's confidence in (0, 1],
    which training uses as that joint's weight.

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
    merged[fill, 2] = np.minimum(teacher[fill, 2], 1.0)  # the teacher's confidence becomes the joint's weight
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
