"""Metrics: hand-computed OKS, PCK and acceleration cases, pycocotools agreement, lag on real GT motion."""

from __future__ import annotations

import glob

import numpy as np
import pytest
import scipy.io

from livepose import metrics as M
from livepose.skeleton import LEFT_HIP, LEFT_SHOULDER, NUM_KEYPOINTS, OKS_SIGMAS, RIGHT_HIP, RIGHT_SHOULDER


def _gt_with(joints: dict[int, tuple[float, float]]) -> np.ndarray:
    gt = np.zeros((NUM_KEYPOINTS, 3))
    for j, (x, y) in joints.items():
        gt[j] = (x, y, 2)
    return gt


def test_oks_hand_computed():
    # nose only, area 10000: exp(-d^2 / (2 * 10000 * (2 * 0.026)^2)) = 0.5  <=>  d^2 = ln 2 * 2 * 10000 * 0.052^2
    area = 10000.0
    d = np.sqrt(np.log(2) * 2 * area * (2 * 0.026) ** 2)
    gt = _gt_with({0: (100.0, 100.0)})
    pred = gt[:, :2].copy()
    pred[0, 0] += d
    assert M.oks(pred, gt, area) == pytest.approx(0.5, abs=1e-9)
    # a second, perfectly placed joint: mean of 0.5 and 1
    gt2 = _gt_with({0: (100.0, 100.0), 5: (120.0, 150.0)})
    pred2 = gt2[:, :2].copy()
    pred2[0, 0] += d
    assert M.oks(pred2, gt2, area) == pytest.approx(0.75, abs=1e-9)
    with pytest.raises(ValueError, match="labelled"):
        M.oks(pred, np.zeros((NUM_KEYPOINTS, 3)), area)


def test_oks_ap_matches_hand_computed_thresholds():
    """One GT, one prediction of OKS 0.77: matched at thresholds 0.50..0.75 (6 of 10) -> AP 0.6, AP50 1, AP75 1."""
    box = np.array([50.0, 50.0, 100.0, 100.0])
    gt = _gt_with({j: (60.0 + 5 * j, 60.0 + 4 * j) for j in range(NUM_KEYPOINTS)})
    area = 10000.0
    # the same normalised error e on every joint: exp(-e) = 0.77
    e = -np.log(0.77)
    d = np.sqrt(e * 2 * area * (2 * OKS_SIGMAS) ** 2)
    pred = gt.copy()
    pred[:, 0] += d
    pred[:, 2] = 1.0
    assert M.oks(pred, gt, area) == pytest.approx(0.77, abs=1e-9)
    stats = M.oks_ap([M.Instance(1, gt, box)], [M.Instance(1, pred, box, score=0.9)])
    assert stats["AP"] == pytest.approx(0.6, abs=1e-6)
    assert stats["AP50"] == pytest.approx(1.0) and stats["AP75"] == pytest.approx(1.0)
    perfect = M.oks_ap([M.Instance(1, gt, box)], [M.Instance(1, np.c_[gt[:, :2], np.ones(17)], box)])
    assert perfect["AP"] == pytest.approx(1.0)


def test_pck_hand_computed():
    # torso: left shoulder (0, 0) -> right hip (60, 80) = 100 px, the other diagonal unlabelled -> threshold 20 px
    gt = _gt_with({LEFT_SHOULDER: (0.0, 0.0), RIGHT_HIP: (60.0, 80.0), 7: (10.0, 10.0), 9: (30.0, 30.0)})
    pred = gt[:, :2].copy()
    pred[7, 0] += 19.0      # inside
    pred[9, 1] += 21.0      # outside
    result = M.pck(pred[None], gt[None], alpha=0.2)
    assert result.scored == 4
    assert result.overall == pytest.approx(3 / 4)
    assert result.per_joint[7] == 1.0 and result.per_joint[9] == 0.0
    assert np.isnan(result.per_joint[0])          # never labelled


def test_pck_torso_fallback_and_unscorable():
    sides_only = _gt_with({LEFT_SHOULDER: (0.0, 0.0), LEFT_HIP: (0.0, 50.0), 7: (5.0, 5.0)})
    assert M.torso_size(sides_only) == pytest.approx(50.0)
    both = _gt_with({LEFT_SHOULDER: (0.0, 0.0), RIGHT_HIP: (60.0, 80.0), RIGHT_SHOULDER: (40.0, 0.0),
                     LEFT_HIP: (0.0, 30.0)})
    assert M.torso_size(both) == pytest.approx((100.0 + 50.0) / 2)
    no_torso = _gt_with({7: (5.0, 5.0), 9: (9.0, 9.0)})
    assert np.isnan(M.torso_size(no_torso))
    assert M.pck(no_torso[None, :, :2], no_torso[None]).scored == 0


def test_pck_box_norm_hand_computed():
    """JHMDB's convention: 0.2 x the longer side of the labelled joints' box (here 100 x 40 -> 20 px)."""
    gt = _gt_with({LEFT_SHOULDER: (0.0, 0.0), RIGHT_HIP: (100.0, 40.0), 7: (50.0, 20.0)})
    assert M.gt_box_size(gt) == pytest.approx(100.0)
    pred = gt[:, :2].copy()
    pred[7, 0] += 19.0      # inside 20 px
    pred[RIGHT_HIP, 1] += 21.0      # outside
    assert M.pck(pred[None], gt[None], 0.2, norm="box").overall == pytest.approx(2 / 3)
    # the torso (shoulder to opposite hip, 107.7 px) gives a threshold of 21.5 px: all three inside
    assert M.pck(pred[None], gt[None], 0.2).overall == pytest.approx(1.0)
    with pytest.raises(ValueError, match="norm"):
        M.pck(pred[None], gt[None], 0.2, norm="height")


def test_paired_bootstrap_ci_covers_the_true_shift():
    """Streams that differ by a constant shift of -2: the interval is that shift; noise around it is bracketed."""
    rng = np.random.default_rng(1)
    a = rng.normal(10.0, 1.0, 200)
    lo, hi = M.paired_bootstrap_ci(a, a - 2.0)
    assert lo == pytest.approx(-2.0) and hi == pytest.approx(-2.0)
    b = a - 2.0 + rng.normal(0.0, 1.0, 200)
    lo, hi = M.paired_bootstrap_ci(a, b, block=5)
    assert lo < np.mean(b - a) < hi and hi - lo < 0.6 and hi < 0
    with_gaps = b.copy()
    with_gaps[::7] = np.nan                     # missing frames are left out, not counted as zero
    lo2, hi2 = M.paired_bootstrap_ci(a, with_gaps, block=5)
    assert lo2 < np.nanmean(with_gaps - a) < hi2
    assert all(np.isnan(M.paired_bootstrap_ci(a, np.full(200, np.nan))))


def test_acceleration_hand_computed():
    t = np.arange(6, dtype=float)
    traj = np.zeros((6, NUM_KEYPOINTS, 2))
    traj[:, :, 0] = t[:, None] ** 2            # x = t^2: second difference 2
    traj[:, :, 1] = 3.0 * t[:, None]           # y linear: second difference 0
    acc = M.acceleration(traj)
    assert acc.shape == (4, NUM_KEYPOINTS)
    np.testing.assert_allclose(acc, 2.0)
    # a missing frame removes the three accelerations that use it
    valid = np.ones((6, NUM_KEYPOINTS), bool)
    valid[2, 0] = False
    assert np.isnan(M.acceleration(traj, valid)[:3, 0]).all() and M.acceleration(traj, valid)[3, 0] == 2.0
    # adding a constant velocity does not change acceleration: zero acceleration error
    assert M.acceleration_error(traj + 5.0 * t[:, None, None], traj) == pytest.approx(0.0, abs=1e-12)
    # normalised by a body size of 100 px: 2 / 100; the torso diagonals below are 100 px long
    traj[:, LEFT_SHOULDER] = (0.0, 0.0)
    traj[:, RIGHT_HIP] = (60.0, 80.0)
    traj[:, RIGHT_SHOULDER] = (60.0, 0.0)
    traj[:, LEFT_HIP] = (0.0, 80.0)
    j = M.jitter(traj[:, :1], size=np.full(6, 100.0))        # the nose only: x = t^2
    assert j.px == pytest.approx(2.0) and j.normalised == pytest.approx(0.02)
    assert M.body_size(traj)[0] == pytest.approx(100.0)


def test_rolling_jitter_equals_batch_over_window():
    rng = np.random.default_rng(1)
    traj = rng.normal(size=(40, NUM_KEYPOINTS, 2)) * 2 + 100
    meter = M.RollingJitter(window_s=0.5)
    fps = 30.0
    for i, frame in enumerate(traj):
        meter.push(i / fps, frame)
    px, _ = meter.value()
    # samples are stamped with the newest frame's time: those within 0.5 s of the last one
    last = (len(traj) - 1) / fps
    newest = [i for i in range(2, len(traj)) if i / fps >= last - 0.5]
    expected = np.mean(M.acceleration(traj)[[i - 2 for i in newest]])
    assert px == pytest.approx(expected)


@pytest.fixture(scope="module")
def penn_clip(shared_data):
    path = sorted(glob.glob(str(shared_data / "trajectories_gt" / "pennaction_labels" / "*.mat")))[0]
    m = scipy.io.loadmat(path)
    return np.stack([m["x"], m["y"]], axis=-1).astype(float), m["visibility"] > 0


def test_lag_of_a_delayed_real_trajectory(penn_clip):
    gt, vis = penn_clip
    for delay in (0, 2, 5):
        delayed = np.concatenate([np.repeat(gt[:1], delay, axis=0), gt[: len(gt) - delay]])
        assert M.lag_frames(gt, delayed, max_lag=8) == pytest.approx(delay, abs=0.25)
    assert M.lag_frames(gt, np.concatenate([gt[3:], np.repeat(gt[-1:], 3, axis=0)])) == pytest.approx(-3, abs=0.25)


def test_pck_and_rmse_on_real_gt(penn_clip):
    gt, vis = penn_clip
    # PennAction -> COCO-17 joint order (head dropped): l_sho, r_sho, l_elb, r_elb, l_wri, r_wri, l_hip, ...
    coco = np.zeros((len(gt), NUM_KEYPOINTS, 3))
    coco[:, 5:17, :2] = gt[:, 1:13]
    coco[:, 5:17, 2] = np.where(vis[:, 1:13], 2, 0)
    assert M.pck(coco[..., :2], coco).overall == 1.0
    far = coco[..., :2] + 1e3
    assert M.pck(far, coco).overall == 0.0
    assert M.rmse(coco[..., :2] + np.array([3.0, 4.0]), coco[..., :2], coco[..., 2] > 0) == pytest.approx(5.0)
