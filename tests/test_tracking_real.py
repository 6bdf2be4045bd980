"""The shipped model on real clips: one stable id per person, and Kalman smoothing against per-frame GT."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import make_pipeline
from livepose.config import EvalConfig, PipelineConfig, SmoothConfig, SourceConfig
from livepose.zoo import ASSETS, SHIPPED

DEFAULT = ASSETS / SHIPPED["default"]
pytestmark = pytest.mark.skipif(not DEFAULT.exists(), reason=f"shipped weights {DEFAULT} missing")


def test_one_person_keeps_one_id_through_a_real_clip(shared_data):
    from livepose.sources import open_source

    pipe = make_pipeline(DEFAULT)
    video = shared_data / "sequences_pseudo_gt/tfjs_pose_squats/pose_squats.mp4"
    with open_source(str(video), SourceConfig(mode="every")) as source:
        ids = [pipe.process(f).track_ids for f in source]
    shown = [i for i in ids if i]
    assert len(shown) >= 0.9 * len(ids), f"the person is shown in {len(shown)} of {len(ids)} frames"
    assert all(len(i) == 1 for i in shown) and len({i[0] for i in shown}) == 1, ids


@pytest.mark.xfail(reason="issue #5: with the shipped v4 weights the raw stream (acceleration error 27.4 px) is "
                          "already near the floor set by the jumpy GT itself (MediaPipe: 22.5), so Kalman cuts it 18 %, "
                          "not 20 %, and PCK@0.2 goes 0.487 -> 0.458 (bootstrap 95 % interval -5.8 to +0.6 points on "
                          "these 40 frames)", strict=False)
def test_kalman_cuts_acceleration_error_on_a_gt_clip(shared_data):
    """JHMDB clip (GT every frame): Kalman lowers acceleration error vs GT, PCK@0.2 within 1 point of raw."""
    from livepose.evaluate import load_dataset, raw_stream, smooth_stream, temporal_metrics

    ds = load_dataset(next((shared_data / "sequences_gt").glob("*/gt.pose17.json")))
    images = list(ds.images())
    gt = np.stack([e.gt[0] for e in ds.entries])
    pipe = make_pipeline(DEFAULT)
    kps, scores = raw_stream(ds, images, pipe, "gt")
    cfg = EvalConfig()
    raw = temporal_metrics(kps, gt, cfg)
    kalman = temporal_metrics(smooth_stream(kps, scores, ds.fps, replace(SmoothConfig(), method="kalman")), gt, cfg)
    print(f"\nraw {raw}\nkalman {kalman}")
    assert kalman["accel_error_px"] < 0.8 * raw["accel_error_px"]
    assert kalman["pck@0.2"] >= raw["pck@0.2"] - 0.01
