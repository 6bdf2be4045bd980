"""Heatmaps -> keypoints: argmax, sub-pixel refinement (quarter offset or DARK), flip test, back-projection."""

from __future__ import annotations

import cv2
import numpy as np

from livepose.config import DecodeConfig
from livepose.crop import affine_matrix, transform_points
from livepose.skeleton import FLIP_INDEX


def argmax_2d(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, J, h, w) -> integer peak coordinates (N, J, 2) as (x, y) floats and peak values (N, J)."""
    n, j, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, j, h * w)
    idx = flat.argmax(axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2)[..., 0]
    coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float32)
    return coords, maxvals


def refine_quarter(coords: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """Shift each peak a quarter pixel toward its higher neighbour (the SimpleBaseline decode)."""
    n, j, h, w = heatmaps.shape
    out = coords.copy()
    x = coords[..., 0].astype(int)
    y = coords[..., 1].astype(int)
    ni, ji = np.arange(n)[:, None], np.arange(j)[None, :]
    inner_x = (x > 0) & (x < w - 1)
    inner_y = (y > 0) & (y < h - 1)
    xl, xr = np.clip(x - 1, 0, w - 1), np.clip(x + 1, 0, w - 1)
    yu, yd = np.clip(y - 1, 0, h - 1), np.clip(y + 1, 0, h - 1)
    dx = heatmaps[ni, ji, y, xr] - heatmaps[ni, ji, y, xl]
    dy = heatmaps[ni, ji, yd, x] - heatmaps[ni, ji, yu, x]
    out[..., 0] += np.where(inner_x, np.sign(dx) * 0.25, 0.0)
    out[..., 1] += np.where(inner_y, np.sign(dy) * 0.25, 0.0)
    return out


def refine_dark(coords: np.ndarray, heatmaps: np.ndarray, kernel: int = 11) -> np.ndarray:
    """DARK (Zhang et al. 2020): second-order Taylor expansion of the log heatmap around the peak."""
    n, j, h, w = heatmaps.shape
    out = coords.copy()
    for a in range(n):
        for b in range(j):
            hm = cv2.GaussianBlur(heatmaps[a, b].astype(np.float32), (kernel, kernel), 0)
            hm = np.log(np.maximum(hm, 1e-10))
            px, py = int(coords[a, b, 0]), int(coords[a, b, 1])
            if not (1 < px < w - 2 and 1 < py < h - 2):
                continue
            dx = 0.5 * (hm[py, px + 1] - hm[py, px - 1])
            dy = 0.5 * (hm[py + 1, px] - hm[py - 1, px])
            dxx = 0.25 * (hm[py, px + 2] - 2 * hm[py, px] + hm[py, px - 2])
            dxy = 0.25 * (hm[py + 1, px + 1] - hm[py - 1, px + 1] - hm[py + 1, px - 1] + hm[py - 1, px - 1])
            dyy = 0.25 * (hm[py + 2, px] - 2 * hm[py, px] + hm[py - 2, px])
            hess = np.array([[dxx, dxy], [dxy, dyy]])
            if abs(np.linalg.det(hess)) < 1e-12:
                continue
            offset = -np.linalg.solve(hess, np.array([dx, dy]))
            if np.all(np.abs(offset) < 1.5):
                out[a, b] += offset
    return out


def flip_heatmaps(heatmaps: np.ndarray) -> np.ndarray:
    """Heatmaps of a horizontally flipped crop -> heatmaps in the original crop's frame.

    Mirrors the x axis, swaps left/right channels, and shifts one pixel as the official flip test does
    (the mirror of pixel centre x is w - 1 - x, the affine convention maps it to w - x).
    """
    flipped = heatmaps[:, FLIP_INDEX, :, ::-1]
    shifted = np.empty_like(flipped)
    shifted[..., 1:] = flipped[..., :-1]
    shifted[..., 0] = flipped[..., 0]
    return shifted


def decode_heatmaps(heatmaps: np.ndarray, cfg: DecodeConfig = DecodeConfig()) -> tuple[np.ndarray, np.ndarray]:
    """(N, J, h, w) heatmaps -> keypoints in heatmap pixels (N, J, 2) and confidences (N, J)."""
    coords, maxvals = argmax_2d(heatmaps)
    if cfg.refine == "dark":
        coords = refine_dark(coords, heatmaps, cfg.dark_kernel)
    elif cfg.refine == "quarter":
        coords = refine_quarter(coords, heatmaps)
    else:
        raise ValueError(f"refine must be 'quarter' or 'dark', got {cfg.refine!r}")
    return coords, np.clip(maxvals, 0.0, 1.0).astype(np.float32)


def heatmap_to_image(coords_hm: np.ndarray, centres: np.ndarray, sizes: np.ndarray,
                     heatmap_hw: tuple[int, int]) -> np.ndarray:
    """Back-project (N, J, 2) heatmap coordinates to image pixels through each crop's inverse affine."""
    out = np.empty(coords_hm.shape, np.float32)
    for i in range(len(coords_hm)):
        inv = affine_matrix(centres[i], sizes[i], heatmap_hw, inverse=True)
        out[i] = transform_points(coords_hm[i], inv)
    return out
