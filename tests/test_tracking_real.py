"""The shipped model on real clips: one stable id per person, and Kalman smoothing against per-frame GT."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from conftest import make_pipeline
from livepose.config import EvalConfig, PipelineConfig, SmoothConfig, SourceConfig
from livepose.data import ASSETS
from livepose.nets.weights import SHIPPED

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


def test_walkers_keep_their_ids_in_a_real_street_clip(shared_data):
    """OpenPose street clip (1280x720, 50 fps, a dozen and more walkers, many small), NanoDet, first 75 frames.

    No GT ids exist for it, so the test asks what a viewer sees: most person-frames belong to tracks that last at
    least half a second (25 frames), and a track's box does not jump between frames, as it would when two people
    swapped ids. Measured with v5 (128x96): 0.87 of 1,317 person-frames in tracks of >= 25 frames, 55 ids shown, 3
    of 1,109 steps over 0.5 box heights (largest 0.60); with v10 (the default since 2026-12-04): 0.91 of 1,266, 48
    ids, no step over 0.5. Before tracks followed the crop boxes and keypoints only added evidence
    (track.py), the same clip gave 0.40 of 960 person-frames and 127 ids.

    Every shown person draws a skeleton (issue 28): before it, 749 of the 1,215 person-frames (m1) drew no joint
    at all and 148 one (tiny walkers the network cannot see, shown because the detector found them). The person
    filter (``track.person_like``) now leaves them out, so the count is of drawn people: m1 gave 204
    person-frames with 6 or more drawn joints before, 145-158 (all with 6 or more) with the filter.
    """
    from livepose.config import RenderConfig
    from livepose.detect import make_detector
    from livepose.sources import open_source

    cfg = replace(PipelineConfig(), detector="nanodet")
    pipe = make_pipeline(DEFAULT, cfg)
    pipe.detector = make_detector(cfg)
    frames_of: dict[int, list[int]] = {}
    steps = []
    last: dict[int, tuple[int, np.ndarray]] = {}
    drawn = []                                      # per shown person-frame, the joints drawn
    with open_source(str(shared_data / "videos/openpose_video.avi"), SourceConfig(mode="every")) as source:
        for k, frame in zip(range(75), source):
            result = pipe.process(frame)
            drawn += [int((p.smoothed_scores >= RenderConfig.min_score).sum()) for p in result.people]
            for tid, box in zip(result.track_ids, result.boxes):
                frames_of.setdefault(tid, []).append(k)
                centre = box[:2] + box[2:] / 2
                if tid in last and last[tid][0] == k - 1:
                    steps.append(np.linalg.norm(centre - last[tid][1]) / box[3])
                last[tid] = (k, centre)
    person_frames = sum(len(f) for f in frames_of.values())
    lasting = sum(len(f) for f in frames_of.values() if f[-1] - f[0] + 1 >= 25) / person_frames
    jumps = np.mean(np.array(steps) > 0.5)
    print(f"\n{len(frames_of)} ids, {person_frames} person-frames, {lasting:.2f} in tracks >= 25 frames, "
          f"{jumps:.3f} of steps > 0.5 box heights")
    assert person_frames >= 120                     # it sees the crowd's drawable walkers (145-158 in three runs: when
                                                    # the background search lands moves it)
    assert min(drawn) >= cfg.track.min_person_joints     # every shown person is drawn, none is an empty track
    assert lasting >= 0.75
    assert jumps <= 0.01


def test_kalman_cuts_acceleration_error_on_a_gt_clip(shared_data):
    """JHMDB clip (GT every frame): Kalman lowers the acceleration error vs GT by a clear margin, PCK@0.2 within 1
    point of raw.

    "Clear margin": the cut is at least 10 % and its 95 % block-bootstrap interval lies below zero. A fixed share
    like 20 % cannot be asked of this clip: the puppet GT is itself jumpy (its own jitter is 22 px/frame^2), which
    puts a floor under every smoother's error; MediaPipe's own tracking scores 22.5 here, Kalman on detector boxes 22.7.
    PCK@0.2 is JHMDB's own metric (0.2 x the GT box): with 0.2 x torso the threshold is 6-9 px on this 320x240
    clip, the median raw error sits right at it, and that figure moves by several points under any smoothing
    (printed; v4: 0.487 -> 0.458, bootstrap interval -5.8 to +0.6 points; v5: 0.379 -> 0.388). Measured with v5:
    accel error 31.8 -> 23.9 px (interval -12.4 to -3.9), box PCK@0.2 0.767 -> 0.790, lag 0.15 frames; with v10
    (the default since 2026-12-04): 35.8 -> 24.6 px (-17.4 to -7.0), 0.710 -> 0.731, lag 0.15 frames.
    """
    from livepose.commands.evaluate import raw_stream, smooth_stream, smoothed_metrics, temporal_metrics
    from livepose.data import load_dataset

    ds = load_dataset(next((shared_data / "sequences_gt").glob("*/gt.pose17.json")))
    images = list(ds.images())
    gt = np.stack([e.gt[0] for e in ds.entries])
    pipe = make_pipeline(DEFAULT)
    kps, scores = raw_stream(ds, images, pipe, "gt")
    cfg = EvalConfig()
    raw = temporal_metrics(kps, gt, cfg)
    smoothed = smooth_stream(kps, scores, ds.fps, replace(SmoothConfig(), method="kalman"))
    kalman = smoothed_metrics(kps, smoothed, gt, cfg)
    print(f"\nraw {raw}\nkalman {kalman}")
    assert kalman["accel_error_px"] <= 0.9 * raw["accel_error_px"]
    assert kalman["accel_error_vs_raw_ci"][1] < 0.0
    assert kalman["pck_box@0.2"] >= raw["pck_box@0.2"] - 0.01
    assert 0.0 <= kalman["lag_behind_raw_frames"] <= 1.0
