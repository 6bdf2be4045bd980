"""Training samples: real images of people with COCO-17 labels, augmented crops and Gaussian heatmap targets.

The recipe follows SimpleBaseline: random scale and rotation around the person box, horizontal flip with a
left/right swap, half-body crops, colour jitter; targets are unnormalised Gaussians (peak 1) with a
per-joint weight that is 0 for a joint nobody labelled. Two optional degradations (off by default) teach the look
of small, moving people in low-resolution video (the JHMDB clip is 320x240 with motion blur): the crop rendered
from fewer pixels and upscaled, and a linear motion blur.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from livepose.config import CropConfig
from livepose.crop import affine_matrix, box_to_region, transform_points
from livepose.data import keypoint_box
from livepose.skeleton import FLIP_INDEX

log = logging.getLogger(__name__)

UPPER_BODY = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
LOWER_BODY = np.array([11, 12, 13, 14, 15, 16])


@dataclass(frozen=True)
class AugmentConfig:
    scale: float = 0.35            # region size x U(1 - s, 1 + s)
    rotation: float = 40.0         # degrees, N(0, r/2) clipped to +-r, applied with probability rot_prob
    rot_prob: float = 0.6
    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    colour: float = 0.25           # brightness/contrast/saturation jitter
    sigma: float = 2.0             # Gaussian sigma in heatmap pixels (2 at 64x48 in the paper)
    lowres_prob: float = 0.0       # probability of rendering the crop from fewer pixels, then upscaling it
    lowres_min: float = 0.35       # smallest linear resolution factor, drawn from U(lowres_min, 1)
    blur_prob: float = 0.0         # probability of a linear motion blur
    blur_max: int = 9              # longest blur, in crop pixels (odd kernel up to this size, any direction)


@dataclass
class Sample:
    image: np.ndarray              # RGB uint8
    keypoints: np.ndarray          # (17, 3): x, y, v (v > 0: labelled; v < 1: a teacher's confidence)
    box: np.ndarray                # (4,) xywh


def gaussian_targets(joints: np.ndarray, weights: np.ndarray, hm_hw: tuple[int, int], sigma: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(J, 2) joints in heatmap pixels -> (h, w, J) Gaussians and (J,) weights (0 where outside the map)."""
    h, w = hm_hw
    ys, xs = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
    target = np.zeros((h, w, len(joints)), np.float32)
    weights = weights.astype(np.float32).copy()
    for j, (x, y) in enumerate(joints):
        if weights[j] <= 0 or not (-3 * sigma <= x < w + 3 * sigma and -3 * sigma <= y < h + 3 * sigma):
            weights[j] = 0.0
            continue
        target[..., j] = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))
    return target, weights


def _half_body(kps: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """A box around the upper or the lower body, so the network learns partially visible people."""
    vis = kps[:, 2] > 0
    part = UPPER_BODY if rng.random() < 0.5 else LOWER_BODY
    sel = part[vis[part]]
    if len(sel) < 3:
        return None
    return keypoint_box(kps[sel], pad=0.15)


def _colour_jitter(img: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    out = img.astype(np.float32)
    out *= 1 + rng.uniform(-strength, strength)                                   # brightness
    mean = out.mean()
    out = (out - mean) * (1 + rng.uniform(-strength, strength)) + mean            # contrast
    grey = out.mean(axis=2, keepdims=True)
    out = (out - grey) * (1 + rng.uniform(-strength, strength)) + grey            # saturation
    return np.clip(out, 0, 255).astype(np.uint8)


def _low_resolution(img: np.ndarray, factor: float) -> np.ndarray:
    """The crop as a camera ``factor`` times as sharp would give it: shrunk (area averaging), then upscaled."""
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _motion_blur(img: np.ndarray, length: int, angle: float) -> np.ndarray:
    """A straight-line blur of ``length`` pixels at ``angle`` degrees: a limb moving during the exposure."""
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    return cv2.filter2D(img, -1, kernel / kernel.sum())


def _degrade(crop: np.ndarray, aug: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Random numbers are drawn only for a degradation that is on, so older recipes replay the same crops."""
    if aug.lowres_prob and rng.random() < aug.lowres_prob:
        crop = _low_resolution(crop, rng.uniform(aug.lowres_min, 1.0))
    if aug.blur_prob and rng.random() < aug.blur_prob:
        crop = _motion_blur(crop, 2 * int(rng.integers(1, aug.blur_max // 2 + 1)) + 1, rng.uniform(0, 180))
    return crop


def make_example(sample: Sample, input_hw: tuple[int, int], aug: AugmentConfig | None, rng: np.random.Generator,
                 crop_cfg: CropConfig = CropConfig()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (crop uint8 HxWx3, target hxwxJ, weights J) training example; ``aug=None`` gives the plain crop."""
    kps = sample.keypoints
    box = sample.box
    if aug is not None and rng.random() < aug.half_body_prob:
        box = _half_body(kps, rng)
        box = sample.box if box is None else box
    centre, size = (a[0] for a in box_to_region(box[None], crop_cfg))
    rot, flip = 0.0, False
    if aug is not None:
        size = size * rng.uniform(1 - aug.scale, 1 + aug.scale)
        if rng.random() < aug.rot_prob:
            rot = float(np.clip(rng.normal(0, aug.rotation / 2), -aug.rotation, aug.rotation))
        flip = rng.random() < aug.flip_prob
    h, w = input_hw
    mat = affine_matrix(centre, size, input_hw, rot)
    crop = cv2.warpAffine(sample.image, mat, (w, h), flags=cv2.INTER_LINEAR)
    joints = transform_points(kps[:, :2], mat)
    weights = np.clip(kps[:, 2], 0.0, 1.0).astype(np.float32)  # GT v in {1, 2}: 1; a teacher's joint: its confidence
    if flip:
        crop = crop[:, ::-1]
        joints[:, 0] = w - 1 - joints[:, 0]  # pixel i of the crop becomes pixel w - 1 - i
        joints, weights = joints[FLIP_INDEX], weights[FLIP_INDEX]
    if aug is not None:
        crop = _degrade(_colour_jitter(crop, aug.colour, rng), aug, rng)
    hm_hw = (h // 4, w // 4)
    target, weights = gaussian_targets(joints / 4.0, weights, hm_hw, (aug or AugmentConfig()).sigma)
    return np.ascontiguousarray(crop), target, weights


def batches(samples: list[Sample], input_hw: tuple[int, int], batch_size: int, aug: AugmentConfig | None,
            seed: int):
    """Endless shuffled batches (crops uint8, targets, weights)."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(samples))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            ex = [make_example(samples[i], input_hw, aug, rng) for i in order[start:start + batch_size]]
            yield tuple(np.stack(parts) for parts in zip(*ex))


