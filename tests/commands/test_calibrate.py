"""Per-weights confidence scale: stored in the .npz, applied by both runtimes, fitted by `livepose calibrate`."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import relocated
from livepose.cli import main as cli
from livepose.data import ASSETS
from livepose.nets.weights import SHIPPED

WIDE = ASSETS / SHIPPED["r18-256x192"]


def test_score_scale_is_stored_in_the_weights_and_multiplies_the_peaks(small_weights, tmp_path):
    from livepose.estimate import PoseEstimator
    from livepose.nets.weights import read_npz_meta, write_npz_meta
    from livepose.nets.load import load_network

    path = tmp_path / "scaled.npz"
    shutil.copy(small_weights, path)
    write_npz_meta(path, score_scale=3.0)
    assert read_npz_meta(path) == {**read_npz_meta(small_weights), "score_scale": 3.0}
    with np.load(small_weights) as before, np.load(path) as after:
        assert sorted(before.files) == sorted(after.files)
        assert all(np.array_equal(before[k], after[k]) for k in before.files if k != "__meta__")

    plain, scaled = load_network(str(small_weights), batch_sizes=(1,)), load_network(str(path), batch_sizes=(1,))
    assert (plain.score_scale, scaled.score_scale) == (1.0, 3.0)
    image = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
    box = np.array([[100, 40, 90, 160]], np.float32)
    a, b = PoseEstimator(plain)(image, box), PoseEstimator(scaled)(image, box)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_allclose(b.scores, np.minimum(3.0 * a.scores, 1.0), rtol=1e-6)


def test_litert_net_reads_the_scale_of_its_weights(small_weights, tmp_path):
    """The scale reaches LiteRT through a real first-use export; one batch size and a short bench keep that export
    quick (what it makes is checked in tests/nets/test_export_lite.py)."""
    from livepose.config import LiteConfig
    from livepose.nets.weights import write_npz_meta
    from livepose.nets.load import load_lite

    path = tmp_path / "scaled.npz"
    shutil.copy(small_weights, path)
    write_npz_meta(path, score_scale=2.5)
    quick = LiteConfig(batch_sizes=(1,), calibration_crops=1, bench_runs=1)
    assert load_lite(str(path), precision="fp32", cfg=quick).score_scale == 2.5


def test_calibrate_matches_the_reference_median_confidence_on_real_people(shared_data, tmp_path):
    """The 256x192 weights peak at 0.6-0.7x the 128x96 ones on the same GT boxes; after calibration the medians
    agree."""
    from livepose.commands.calibrate import labelled_peaks
    from livepose.data import load_dataset
    from livepose.nets.weights import read_npz_meta, write_npz_meta
    from livepose.nets.load import load_network

    subset = relocated(shared_data / "images_gt" / "annotations.pose17.json", tmp_path / "subset.pose17.json",
                       lambda images: images[::3])      # 7 of the 21 images keep the test short
    path = tmp_path / "wide.npz"
    shutil.copy(WIDE, path)
    write_npz_meta(path, score_scale=9.0)                   # an earlier scale is ignored, not compounded

    assert cli(["calibrate", str(subset), "--model", str(path)]) == 0
    scale = read_npz_meta(path)["score_scale"]
    assert 1.2 <= scale <= 2.5, scale
    ds = load_dataset(subset)
    entries = list(zip(ds.entries, ds.images()))
    ref = np.median(labelled_peaks(load_network("r18-128x96", batch_sizes=(1, 8)), entries))
    got = np.median(labelled_peaks(load_network(str(path), batch_sizes=(1, 8)), entries))
    assert got == pytest.approx(ref, rel=0.01)
    assert cli(["calibrate", str(subset), "--model", "r18-256x192"]) == 2     # a name, not a file: refused


def test_shipped_256x192_weights_carry_their_calibration():
    from livepose.nets.weights import read_npz_meta

    assert 1.2 <= read_npz_meta(WIDE)["score_scale"] <= 2.5


def test_keypoints_just_above_the_smoothing_threshold_still_carry_information(shared_data, tmp_path):
    """Why smoothing's ``min_score`` is 0.1: on GT people the default network never trains on (images_gt and the 200
    held-out LSPet images), its keypoints at confidence 0.1-0.2 still land within PCK@0.2 at least half as often as
    those at 0.2-0.3, which are used anyway; coasting over them would throw measurements away. Measured 2026-12-08:
    m4 0.24 against 0.44 (under 0.1: 0.12); v10, the default when the threshold was set (2026-12-04), 0.24 against
    0.28 (0.07)."""
    from livepose.config import CropConfig, SmoothConfig
    from livepose.estimate import PoseEstimator
    from livepose.data import load_dataset
    from livepose.metrics import pck_masks
    from livepose.nets.load import load_network

    lspet = relocated(shared_data / "train_pool/lspet/annotations.pose17.json", tmp_path / "hold.pose17.json",
                      lambda images: images[-200:])
    estimator = PoseEstimator(load_network("default", batch_sizes=(1, 8)), CropConfig())
    preds, gts, scores = [], [], []
    for path in (shared_data / "images_gt/annotations.pose17.json", lspet):
        ds = load_dataset(path)
        for entry, image in zip(ds.entries, ds.images()):
            if len(entry.boxes):
                est = estimator(image, entry.boxes)
                preds.append(est.keypoints), gts.append(entry.gt), scores.append(est.scores)
    pred, gt, score = np.concatenate(preds), np.concatenate(gts), np.concatenate(scores)

    scored, correct = pck_masks(pred, gt)              # PCK@0.2 x torso, as `livepose eval` scores it

    def pck_between(lo: float, hi: float) -> float:
        return float(correct[scored & (score >= lo) & (score < hi)].mean())

    floor = SmoothConfig().min_score
    just_above, used_anyway = pck_between(floor, 0.2), pck_between(0.2, 0.3)
    print(f"\nPCK@0.2 at confidence [{floor}, 0.2): {just_above:.2f}, [0.2, 0.3): {used_anyway:.2f}, "
          f"under {floor}: {pck_between(0.0, floor):.2f}")
    assert just_above >= 0.5 * used_anyway
