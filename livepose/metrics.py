"""Accuracy and temporal-stability metrics on keypoint arrays: jitter, acceleration error, lag, PCK, OKS, OKS AP.

Conventions: trajectories are (T, J, 2) arrays in px; a joint that is missing at a frame is NaN (or masked by a
``valid`` (T, J) array). Ground truth is (..., J, 3) with visibility ``v`` in the last column; only ``v > 0`` is
scored, as in COCO.

Body size, used to make jitter comparable across people and resolutions, is the torso diagonal (mean of
|left_shoulder - right_hip| and |right_shoulder - left_hip| over the labelled ones); when neither diagonal is
available the diagonal of the box around the visible keypoints is used instead.

PCK@alpha uses the torso size of each ground-truth instance: the mean of the labelled torso diagonals (shoulder to
opposite hip, the LSP / Yang & Ramanan convention); if neither diagonal is labelled, the mean of the labelled torso
sides (shoulder to hip of the same side); with no torso at all the instance is not scored. ``norm="box"`` uses the
longer side of the box around the labelled GT joints instead: the convention of the JHMDB and Penn Action video
benchmarks (their "PCK@0.2"; MMPose calls the torso version of it "tPCK").
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from livepose.skeleton import LEFT_HIP, LEFT_SHOULDER, OKS_SIGMAS, RIGHT_HIP, RIGHT_SHOULDER

TORSO_DIAGONALS = ((LEFT_SHOULDER, RIGHT_HIP), (RIGHT_SHOULDER, LEFT_HIP))
TORSO_SIDES = ((LEFT_SHOULDER, LEFT_HIP), (RIGHT_SHOULDER, RIGHT_HIP))


@contextlib.contextmanager
def warnings_ignored():
    """nanmean of an all-NaN slice is NaN by design here, not a problem worth a RuntimeWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _masked(points: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    pts = np.asarray(points, np.float64)[..., :2].copy()
    if valid is not None:
        pts[~np.asarray(valid, bool)] = np.nan
    return pts


def second_difference(points: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """x[t-1] - 2 x[t] + x[t+1] for t = 1..T-2: (T-2, J, 2), NaN where any of the three frames is missing."""
    pts = _masked(points, valid)
    return pts[:-2] - 2.0 * pts[1:-1] + pts[2:]


def acceleration(points: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Per-joint acceleration magnitude |x[t-1] - 2x[t] + x[t+1]| in px/frame^2: (T-2, J)."""
    return np.linalg.norm(second_difference(points, valid), axis=-1)


def _pair_distance(points: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """Mean over the available pairs of |points[a] - points[b]| (NaN-aware): (...,)."""
    d = np.stack([np.linalg.norm(points[..., a, :] - points[..., b, :], axis=-1) for a, b in pairs], axis=-1)
    with warnings_ignored():
        return np.nanmean(d, axis=-1)


def _extent(points: np.ndarray) -> np.ndarray:
    """Width and height of the box around the non-NaN points of each instance: (..., 2), NaN when there are none."""
    with warnings_ignored():
        return np.nanmax(points, axis=-2) - np.nanmin(points, axis=-2)


def body_size(points: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Torso diagonal per frame, or the visible keypoints' box diagonal where no diagonal is available: (T,)."""
    pts = _masked(points, valid)
    torso = _pair_distance(pts, TORSO_DIAGONALS)
    return np.where(np.isfinite(torso), torso, np.linalg.norm(_extent(pts), axis=-1))


@dataclass(frozen=True)
class Jitter:
    """Mean acceleration magnitude over all valid (frame, joint) triples."""

    px: float                 # px / frame^2
    normalised: float         # divided by the body size of the middle frame
    per_joint_px: np.ndarray  # (J,)
    count: int                # number of (frame, joint) accelerations that were averaged


def jitter(points: np.ndarray, valid: np.ndarray | None = None, size: np.ndarray | None = None) -> Jitter:
    """Jitter of a (T, J, 2) trajectory; ``size`` (T,) overrides the body size (e.g. from ground truth)."""
    acc = acceleration(points, valid)
    size = body_size(points, valid) if size is None else np.asarray(size, np.float64)
    norm = acc / size[1:-1, None]
    ok = np.isfinite(acc)
    with warnings_ignored():
        return Jitter(float(np.nanmean(acc)), float(np.nanmean(np.where(ok, norm, np.nan))),
                      np.nanmean(acc, axis=0), int(ok.sum()))


def acceleration_errors(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """|acc(pred) - acc(gt)| per middle frame and joint in px/frame^2: (T-2, J), NaN where not computable."""
    diff = second_difference(pred, valid) - second_difference(gt, valid)
    return np.linalg.norm(diff, axis=-1)


def acceleration_error(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean |acc(pred) - acc(gt)| in px/frame^2 (the "accel error" of temporal pose papers)."""
    with warnings_ignored():
        return float(np.nanmean(acceleration_errors(pred, gt, valid)))


def paired_bootstrap_ci(a: np.ndarray, b: np.ndarray, block: int = 5, draws: int = 5000, level: float = 0.95,
                        seed: int = 0) -> tuple[float, float]:
    """Confidence interval of mean(b) - mean(a) for per-frame values of two streams of the same frames.

    Moving-block bootstrap over frames (blocks of ``block`` consecutive frames, resampled with replacement):
    neighbouring frames of a video are correlated, so resampling single frames would understate the spread.
    NaN entries (frames where either value is missing) are left out of each draw's means.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    n = len(a)
    if not ok.any():
        return float("nan"), float("nan")
    block = max(1, min(block, n))
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - block + 1, size=(draws, -(-n // block)))
    idx = (starts[:, :, None] + np.arange(block)).reshape(draws, -1)[:, :n]
    w = ok[idx]
    diff = np.where(ok, b - a, 0.0)[idx]
    means = (diff * w).sum(axis=1) / np.maximum(w.sum(axis=1), 1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    return float(lo), float(hi)


def rmse(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Root mean squared point distance in px over valid joints."""
    d2 = np.sum((_masked(pred, valid) - _masked(gt, valid)) ** 2, axis=-1)
    with warnings_ignored():
        return float(np.sqrt(np.nanmean(d2)))


def lag_frames(reference: np.ndarray, delayed: np.ndarray, valid: np.ndarray | None = None, max_lag: int = 10) -> float:
    """How many frames ``delayed`` trails ``reference``, from the cross-correlation of their velocities.

    Velocities of all joints and both axes are pooled; the integer peak is refined by a parabola through its
    neighbours, so the answer has sub-frame resolution. Positive means ``delayed`` is late.
    """
    va = np.diff(_masked(reference, valid), axis=0)
    vb = np.diff(_masked(delayed, valid), axis=0)
    with warnings_ignored():
        va = va - np.nanmean(va, axis=0)
        vb = vb - np.nanmean(vb, axis=0)
    lags = np.arange(-max_lag, max_lag + 1)
    corr = np.empty(len(lags))
    for i, k in enumerate(lags):
        a, b = (va[: len(va) - k], vb[k:]) if k >= 0 else (va[-k:], vb[: len(vb) + k])
        prod = a * b
        ok = np.isfinite(prod)
        corr[i] = prod[ok].sum() / np.sqrt((a[ok] ** 2).sum() * (b[ok] ** 2).sum()) if ok.any() else np.nan
    best = int(np.nanargmax(corr))
    if 0 < best < len(lags) - 1:
        lo, mid, hi = corr[best - 1: best + 2]
        denom = lo - 2 * mid + hi
        return float(lags[best] + (0.5 * (lo - hi) / denom if denom < 0 else 0.0))
    return float(lags[best])


class RollingJitter:
    """Jitter over the last ``window_s`` seconds of one person's stream, for a live meter."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._points: deque[np.ndarray] = deque(maxlen=3)
        self._samples: deque[tuple[float, np.ndarray, float]] = deque()   # (t, per-joint acc, body size)

    def reset(self) -> None:
        self._points.clear()
        self._samples.clear()

    def push(self, t: float, keypoints: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Add the frame at time ``t``; missing joints (not ``valid`` or NaN) break their acceleration."""
        self._points.append(_masked(keypoints, valid))
        if len(self._points) == 3:
            window = np.stack(self._points)
            self._samples.append((t, acceleration(window)[0], float(body_size(window[1:2])[0])))
        while self._samples and self._samples[0][0] < t - self.window_s:
            self._samples.popleft()

    def value(self) -> tuple[float, float]:
        """Mean acceleration (px/frame^2) and the same divided by body size; NaN before three frames."""
        if not self._samples:
            return float("nan"), float("nan")
        acc = np.stack([s[1] for s in self._samples])
        size = np.array([s[2] for s in self._samples])
        with warnings_ignored():
            return float(np.nanmean(acc)), float(np.nanmean(acc / size[:, None]))


def torso_size(gt: np.ndarray) -> np.ndarray:
    """Per-instance torso size of (..., J, 3) ground truth (see the module docstring): (...,), NaN if unknown."""
    pts = _masked(gt, np.asarray(gt)[..., 2] > 0)
    diag = _pair_distance(pts, TORSO_DIAGONALS)
    return np.where(np.isfinite(diag), diag, _pair_distance(pts, TORSO_SIDES))


@dataclass(frozen=True)
class PCK:
    overall: float            # correct / scored over all joints
    per_joint: np.ndarray     # (J,), NaN for joints never labelled
    scored: int               # number of (instance, joint) pairs scored


def gt_box_size(gt: np.ndarray) -> np.ndarray:
    """Longer side of the box around each instance's labelled joints: (...,), NaN when none is labelled."""
    with warnings_ignored():
        return np.nanmax(_extent(_masked(gt, np.asarray(gt)[..., 2] > 0)), axis=-1)


PCK_NORMS = {"torso": torso_size, "box": gt_box_size}


def pck_masks(pred: np.ndarray, gt: np.ndarray, alpha: float = 0.2,
              norm: str = "torso") -> tuple[np.ndarray, np.ndarray]:
    """Per keypoint, (scored, correct) masks (N, J) of PCK@alpha: a joint is correct when within alpha x the
    instance's size (``norm``: "torso" or "box", see the module docstring) of the GT. ``pred`` (N, J, 2), ``gt``
    (N, J, 3)."""
    if norm not in PCK_NORMS:
        raise ValueError(f"PCK norm must be one of {tuple(PCK_NORMS)}, got {norm!r}")
    gt = np.asarray(gt, np.float64).reshape(-1, *np.shape(gt)[-2:])
    pred = np.asarray(pred, np.float64)[..., :2].reshape(len(gt), -1, 2)
    size = PCK_NORMS[norm](gt)
    scored = (gt[..., 2] > 0) & np.isfinite(size)[:, None]
    dist = np.linalg.norm(pred - gt[..., :2], axis=-1)
    return scored, scored & (dist <= alpha * size[:, None])     # NaN predictions count as wrong


def pck(pred: np.ndarray, gt: np.ndarray, alpha: float = 0.2, norm: str = "torso") -> PCK:
    """PCK@alpha overall and per joint (see :func:`pck_masks`)."""
    scored, correct = pck_masks(pred, gt, alpha, norm)
    n = scored.sum(axis=0)
    per_joint = np.where(n > 0, correct.sum(axis=0) / np.maximum(n, 1), np.nan)
    total = int(scored.sum())
    return PCK(float(correct.sum() / total) if total else float("nan"), per_joint, total)


def oks(pred: np.ndarray, gt: np.ndarray, area: float, sigmas: np.ndarray = OKS_SIGMAS) -> float:
    """COCO object keypoint similarity of one prediction (J, 2+) against GT (J, 3) of object area ``area`` px^2.

    Same formula as pycocotools: mean over GT joints with v > 0 of exp(-d^2 / (2 area (2 sigma)^2)).
    """
    gt = np.asarray(gt, np.float64)
    d2 = np.sum((np.asarray(pred, np.float64)[:, :2] - gt[:, :2]) ** 2, axis=-1)
    e = d2 / ((2 * sigmas) ** 2) / (area + np.spacing(1)) / 2
    vis = gt[:, 2] > 0
    if not vis.any():
        raise ValueError("OKS needs at least one labelled (v > 0) ground-truth joint")
    return float(np.mean(np.exp(-e[vis])))


@dataclass(frozen=True)
class Instance:
    """One person in one image, as COCO needs it."""

    image_id: int
    keypoints: np.ndarray     # (J, 3): x, y, v for GT; x, y, score for predictions
    box: np.ndarray           # (4,) xywh
    score: float = 1.0        # predictions: the person's confidence (ranks detections for AP)
    area: float | None = None  # GT: segment area; defaults to the box area


def coco_ground_truth(instances: Sequence[Instance], image_sizes: dict[int, tuple[int, int]] | None = None) -> dict:
    """A COCO keypoint dataset dict from GT instances (``image_sizes``: id -> (width, height), optional)."""
    image_ids = sorted({inst.image_id for inst in instances} | set(image_sizes or {}))
    sizes = image_sizes or {}
    images = [{"id": i, "width": sizes.get(i, (0, 0))[0], "height": sizes.get(i, (0, 0))[1]} for i in image_ids]
    annotations = []
    for k, inst in enumerate(instances, start=1):
        kp = np.asarray(inst.keypoints, np.float64)
        box = [float(v) for v in inst.box]
        annotations.append({
            "id": k, "image_id": inst.image_id, "category_id": 1, "iscrowd": 0, "bbox": box,
            "area": float(inst.area if inst.area is not None else box[2] * box[3]),
            "keypoints": kp.reshape(-1).tolist(), "num_keypoints": int((kp[:, 2] > 0).sum()),
        })
    return {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "person", "supercategory": "person"}]}


def coco_results(instances: Sequence[Instance]) -> list[dict]:
    """COCO keypoint result list from predicted instances."""
    return [{"image_id": inst.image_id, "category_id": 1, "score": float(inst.score),
             "keypoints": np.asarray(inst.keypoints, np.float64).reshape(-1).tolist(),
             "bbox": [float(v) for v in inst.box]} for inst in instances]


OKS_AP_NAMES = ("AP", "AP50", "AP75", "AP_medium", "AP_large", "AR", "AR50", "AR75", "AR_medium", "AR_large")


def oks_ap(gt: Sequence[Instance], pred: Sequence[Instance], sigmas: np.ndarray = OKS_SIGMAS) -> dict[str, float]:
    """COCO keypoint AP/AR (pycocotools COCOeval, iouType "keypoints") of predictions against GT instances."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not pred:
        return {name: 0.0 for name in OKS_AP_NAMES}
    with contextlib.redirect_stdout(io.StringIO()):    # pycocotools prints its progress
        coco_gt = COCO()
        coco_gt.dataset = coco_ground_truth(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(coco_results(pred))
        ev = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return dict(zip(OKS_AP_NAMES, (float(v) for v in ev.stats)))
