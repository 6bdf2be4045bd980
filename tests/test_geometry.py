"""Crop/un-crop geometry and heatmap decoding: synthetic heatmaps with known peaks round-trip to the pixel."""

from __future__ import annotations

import numpy as np
import pytest

from livepose.config import CropConfig, DecodeConfig
from livepose.crop import affine_matrix, box_iou, box_to_region, transform_points, warp_crops
from livepose.decode import decode_heatmaps, flip_heatmaps, heatmap_to_image
from livepose.skeleton import FLIP_INDEX

HM = (64, 48)


def gaussian_maps(points_hm: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    ys, xs = np.mgrid[0:HM[0], 0:HM[1]].astype(np.float32)
    return np.stack([np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2)) for x, y in points_hm])[None]


def test_box_to_region_keeps_aspect_and_pads():
    centres, sizes = box_to_region(np.array([[10, 20, 60, 200], [0, 0, 300, 100]]), CropConfig(aspect=0.75, padding=1.25))
    np.testing.assert_allclose(centres, [[40, 120], [150, 50]])
    np.testing.assert_allclose(sizes[:, 0] / sizes[:, 1], 0.75)
    np.testing.assert_allclose(sizes, [[150 * 1.25, 200 * 1.25], [300 * 1.25, 400 * 1.25]])


def test_affine_inverse_round_trip():
    m = affine_matrix(np.array([321.5, 210.25]), np.array([150.0, 200.0]), (256, 192), rotation_deg=17.0)
    inv = affine_matrix(np.array([321.5, 210.25]), np.array([150.0, 200.0]), (256, 192), 17.0, inverse=True)
    pts = np.random.default_rng(0).uniform(0, 500, (20, 2))
    np.testing.assert_allclose(transform_points(transform_points(pts, m), inv), pts, atol=1e-9)
    np.testing.assert_allclose(transform_points(np.array([321.5, 210.25]), m), [96, 128])


@pytest.mark.parametrize("refine,tol_image_px", [("dark", 0.5), ("quarter", 0.5 * 150 * 1.25 / 48)])
def test_heatmap_round_trip(refine, tol_image_px):
    """Image keypoints -> heatmap Gaussians -> decode -> image: within 0.5 px (DARK) / half a heatmap cell."""
    rng = np.random.default_rng(1)
    box = np.array([[200.0, 100.0, 150.0, 200.0]])
    centres, sizes = box_to_region(box)
    truth = rng.uniform([210, 110], [340, 290], (17, 2))
    to_hm = affine_matrix(centres[0], sizes[0], HM)
    heatmaps = gaussian_maps(transform_points(truth, to_hm))
    coords, scores = decode_heatmaps(heatmaps, DecodeConfig(refine=refine))
    back = heatmap_to_image(coords, centres, sizes, HM)[0]
    err = np.linalg.norm(back - truth, axis=1)
    assert err.max() < tol_image_px, err.max()
    assert np.all(scores > 0.8)


def test_flip_heatmaps_swaps_sides_and_mirrors():
    pts = np.stack([np.linspace(5, 40, 17), np.linspace(5, 60, 17)], axis=1)
    maps = gaussian_maps(pts)
    mirrored = maps[:, :, :, ::-1].copy()  # what the network sees for a flipped crop, before the side swap
    mirrored = mirrored[:, FLIP_INDEX]
    back, _ = decode_heatmaps(flip_heatmaps(mirrored), DecodeConfig(refine="dark"))
    # flip_heatmaps shifts one cell (the official flip test); the peak returns within that cell
    assert np.abs(back[0] - pts).max() <= 1.0 + 1e-3


def test_warp_crops_reuses_buffer_and_centres_the_box():
    img = np.zeros((480, 640, 3), np.uint8)
    img[200:280, 300:340] = 255  # a white block at the box centre
    centres, sizes = box_to_region(np.array([[270.0, 140.0, 100.0, 200.0]]))
    buf = np.empty((4, 256, 192, 3), np.uint8)
    crops, mats = warp_crops(img, centres, sizes, (256, 192), out=buf)
    assert crops.base is buf or crops is buf[:1] or np.shares_memory(crops, buf)
    assert crops[0, 128, 96].min() == 255 and crops[0, 5, 5].max() == 0


def test_box_iou():
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 10, 10]]))
    np.testing.assert_allclose(iou, [[50 / 150, 0.0, 1.0]])
