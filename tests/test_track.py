"""Tracker on real GT motion: one stable id on the JHMDB clip, ids kept through PoseTrack crossings, life cycle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from livepose.config import TrackConfig
from livepose.crop import box_iou
from livepose.track import Tracker

FPS = 30.0
NOISE_PX = 2.0
CROSSING_VIDEOS = ("005997927", "051825231", "098485840")   # two people whose boxes overlap and swap sides


def _frame_arrays(people: list[dict], rng: np.random.Generator):
    k = np.array([p["keypoints"] for p in people], float).reshape(-1, 17, 3)
    boxes = np.array([p["bbox"] for p in people], float).reshape(-1, 4)
    return (boxes + rng.normal(0, NOISE_PX, boxes.shape), k[..., :2] + rng.normal(0, NOISE_PX, k[..., :2].shape),
            (k[..., 2] > 0).astype(float))


def _track_video(frames: list[dict], cfg: TrackConfig, seed: int = 0) -> tuple[dict[int, list[int]], int]:
    """Feed GT (+ noise, shuffled order) to a tracker; returns GT track id -> tracker ids per frame, and switches."""
    rng = np.random.default_rng(seed)
    tracker = Tracker(cfg)
    ids: dict[int, list[int]] = {}
    for f in frames:
        people = list(f["people"])
        rng.shuffle(people)
        boxes, kp, sc = _frame_arrays(people, rng)
        tracks = tracker.update(boxes, kp, sc, f["frame_index"] / FPS)
        for p, k in zip(people, kp):
            match = [t.id for t in tracks if t.misses == 0 and np.array_equal(t.keypoints, k)]
            assert len(match) == 1
            ids.setdefault(p["track_id"], []).append(match[0])
    switches = sum(int(np.count_nonzero(np.diff(v))) for v in ids.values())
    return ids, switches


@pytest.fixture(scope="module")
def posetrack(shared_data):
    return json.loads((shared_data / "trajectories_gt" / "posetrack_bonn_annolist.pose17.json").read_text())["videos"]


def test_one_stable_id_on_jhmdb_clip(shared_data):
    d = json.loads((shared_data / "sequences_gt" / "jhmdb_goal_keeping_tips_catch_fr_med_2" / "gt.pose17.json")
                   .read_text())
    assert len(d["frames"]) == 40
    ids, switches = _track_video(d["frames"], TrackConfig())
    assert switches == 0 and len(ids) == 1
    # with min_hits frames seen the track is confirmed
    tracker = Tracker(TrackConfig(min_hits=2))
    rng = np.random.default_rng(1)
    states = [tracker.update(*_frame_arrays(f["people"], rng), i / FPS)[0] for i, f in enumerate(d["frames"][:3])]
    assert [s.confirmed for s in states] == [False, True, True]
    assert [s.hits for s in states] == [1, 2, 3] and states[-1].age == 2


@pytest.mark.parametrize("video", CROSSING_VIDEOS)
def test_two_people_crossing_keep_their_ids(posetrack, video):
    v = next(v for v in posetrack if v["video"] == video)
    # the premise: two GT tracks whose boxes overlap and whose horizontal order swaps
    tracks: dict[int, dict[int, np.ndarray]] = {}
    for i, f in enumerate(v["frames"]):
        for p in f["people"]:
            tracks.setdefault(p["track_id"], {})[i] = np.array(p["bbox"])
    a, b = sorted(tracks)[:2]
    common = sorted(set(tracks[a]) & set(tracks[b]))
    dx = [tracks[a][i][0] + tracks[a][i][2] / 2 - tracks[b][i][0] - tracks[b][i][2] / 2 for i in common]
    assert np.sign(dx[0]) != np.sign(dx[-1])
    assert max(box_iou(tracks[a][i], tracks[b][i])[0, 0] for i in common) > 0.5
    for seed in range(3):
        ids, switches = _track_video(v["frames"], TrackConfig(), seed)
        assert switches == 0
        assert ids[a][0] != ids[b][0]


def test_id_switch_rate_over_all_posetrack_videos(posetrack):
    total = switches = 0
    for v in posetrack:
        ids, s = _track_video(v["frames"], TrackConfig())
        switches += s
        total += sum(len(x) for x in ids.values())
    print(f"PoseTrack ({len(posetrack)} videos, GT + {NOISE_PX} px noise): {switches} id switches "
          f"in {total} person-frames ({100 * switches / total:.2f} %)")
    assert switches / total < 0.02


def test_life_cycle_and_ids_never_reused(shared_data):
    d = json.loads((shared_data / "sequences_gt" / "jhmdb_goal_keeping_tips_catch_fr_med_2" / "gt.pose17.json")
                   .read_text())
    cfg = TrackConfig(min_hits=2, max_misses=3)
    tracker = Tracker(cfg)
    rng = np.random.default_rng(2)
    empty = (np.zeros((0, 4)), np.zeros((0, 17, 2)), np.zeros((0, 17)))
    frames = iter(d["frames"])
    t = 0.0

    def step(people: bool):
        nonlocal t
        t += 1 / FPS
        return tracker.update(*(_frame_arrays(next(frames)["people"], rng) if people else empty), t)

    first = step(True)[0]
    assert not first.confirmed
    assert step(False) == []                            # a tentative track ends at its first miss
    born = step(True)[0]
    assert born.id != first.id
    step(True)
    for misses in range(1, cfg.max_misses + 1):         # a confirmed one survives max_misses missed frames
        (trk,) = step(False)
        assert trk.id == born.id and trk.misses == misses and not trk.visible
    assert step(False) == []                            # ... and ends after that
    reborn = step(True)[0]
    assert reborn.id not in (first.id, born.id)         # the same person comes back with a fresh id
    tracker.reset()
    assert step(True)[0].id > reborn.id


def test_dissimilar_detection_starts_a_new_track(shared_data):
    d = json.loads((shared_data / "sequences_gt" / "jhmdb_goal_keeping_tips_catch_fr_med_2" / "gt.pose17.json")
                   .read_text())
    rng = np.random.default_rng(3)
    tracker = Tracker(TrackConfig(min_hits=1))
    boxes, kp, sc = _frame_arrays(d["frames"][0]["people"], rng)
    (a,) = tracker.update(boxes, kp, sc, 0.0)
    far = boxes + np.array([boxes[0, 2] * 2, 0, 0, 0])              # the same pose two box widths away
    tracks = tracker.update(far, kp + np.array([boxes[0, 2] * 2, 0]), sc, 1 / FPS)
    assert tracker.similarity(boxes, kp, sc, 2 / FPS).shape == (2, 1)
    assert {t.id for t in tracks} == {a.id, a.id + 1}
    assert [t.misses for t in tracks if t.id == a.id] == [1]


def test_keypoints_only_add_evidence_to_the_box_overlap():
    """A small, roughly posed person's OKS is low even against their own pose a frame later; it must not pull a
    well-overlapping pair under the match threshold, while agreeing keypoints still raise a pair above the IoU."""
    tracker = Tracker(TrackConfig())
    box = np.array([[100.0, 100.0, 30.0, 60.0]])
    kp = np.random.default_rng(0).uniform([100, 100], [130, 160], (1, 17, 2))
    sc = np.ones((1, 17))
    tracker.update(box, kp, sc, 0.0)
    moved = box + [[4.0, 0.0, 0.0, 0.0]]
    iou = box_iou(box, moved)[0, 0]
    scattered = tracker.similarity(moved, kp[:, ::-1], sc, 0.0)[0, 0]      # the same joints, every one misplaced
    agreeing = tracker.similarity(moved, kp, sc, 0.0)[0, 0]                # every joint where it was
    assert scattered == pytest.approx(iou) and scattered >= TrackConfig().min_iou
    assert agreeing > iou
