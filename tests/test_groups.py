"""Groups (issue 28): the pipeline's rules for several people, with scripted detectors and networks.

Each scene is a few people standing still; the network stand-in gives, for each crop, the joints of the person
nearest the crop's centre (what a top-down network does when two people share a crop), or for a crop on an object a
few scattered, unsure joints. Detection runs on the frame it serves, so every frame is deterministic.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from livepose.config import PipelineConfig
from livepose.detect import Detection
from livepose.estimate import Estimate
from livepose.pipeline import Pipeline
from livepose.sources import Frame

GRID = np.stack([np.tile([0.2, 0.8], 9)[:17], np.linspace(0.05, 0.95, 17)], axis=1)   # joints inside a box
CFG = replace(PipelineConfig(), track=replace(PipelineConfig().track, background_detect=False))
IMAGE = np.zeros((600, 800, 3), np.uint8)


def pose_of(box: np.ndarray) -> np.ndarray:
    """(17, 2) joints of a person standing in ``box`` (xywh)."""
    return (box[:2] + GRID * box[2:]).astype(np.float32)


class Scene:
    """People (boxes) and objects (boxes) standing still; ``__call__`` is the network stand-in."""

    num_joints = 17

    def __init__(self, people: list[np.ndarray], objects: tuple[np.ndarray, ...] = ()) -> None:
        self.people = [np.asarray(b, np.float32) for b in people]
        self.objects = [np.asarray(b, np.float32) for b in objects]

    def __call__(self, image, boxes) -> Estimate:
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        kps, scores = [], []
        for b in boxes:
            centre = b[:2] + b[2:] / 2
            targets = self.people + self.objects
            nearest = int(np.argmin([np.linalg.norm(centre - (t[:2] + t[2:] / 2)) for t in targets]))
            kps.append(pose_of(targets[nearest]))
            on_object = nearest >= len(self.people)
            scores.append(np.where(np.arange(17) % 6 == 0, 0.35, 0.1) if on_object else np.full(17, 0.9))
        return Estimate(np.array(kps, np.float32).reshape(-1, 17, 2), np.array(scores, np.float32).reshape(-1, 17),
                        {})


def run(scene: Scene, detect, frames: int) -> list[list[int]]:
    pipe = Pipeline(scene, detect, CFG)
    return [pipe.process(Frame(IMAGE, i, time.monotonic(), i / 30)).track_ids for i in range(frames)]


def test_frame_zero_and_a_still_image_get_poses():
    """The first frame of a stream (a one-image folder is nothing else) shows everyone the detector found."""
    person = np.array([300, 100, 150, 400], np.float32)
    ids = run(Scene([person]), lambda image: [Detection(box_xywh=person, score=0.9)], 3)
    assert len(ids[0]) == 1 and ids == [ids[0]] * 3


def test_a_person_behind_another_keeps_her_track():
    """B stands half behind A; after the first frame the detector sees only A, whose box covers most of B's crop.
    B's keypoints do not agree with A's box (not inside it, off its centre), so B's crop stays and she keeps her id.
    """
    a = np.array([200, 100, 150, 400], np.float32)
    b = np.array([260, 80, 150, 400], np.float32)
    calls = []

    def detect(image):
        calls.append(1)
        return [Detection(box_xywh=a, score=0.9)] + ([Detection(box_xywh=b, score=0.6)] if len(calls) == 1 else [])

    ids = run(Scene([a, b]), detect, 3 * CFG.track.detect_every)
    assert len(calls) >= 3                                      # the periodic search ran and missed her
    assert all(len(i) == 2 for i in ids) and ids == [ids[0]] * len(ids)


def test_duplicates_of_one_person_are_merged():
    """A detector gives two boxes on one person (a full one and one on her upper body, too different for box
    suppression); both crops show her pose, so she is one person with one id."""
    person = np.array([300, 100, 150, 400], np.float32)
    upper = np.array([310, 90, 140, 230], np.float32)
    ids = run(Scene([person]), lambda image: [Detection(box_xywh=person, score=0.9),
                                              Detection(box_xywh=upper, score=0.5)], 2 * CFG.track.detect_every)
    assert all(len(i) == 1 for i in ids) and ids == [ids[0]] * len(ids)


def test_a_phantom_on_an_object_is_dropped():
    """A detector box on a bag: the network finds a few scattered, unsure joints there, not a person."""
    person = np.array([100, 100, 150, 400], np.float32)
    bag = np.array([500, 400, 120, 90], np.float32)
    ids = run(Scene([person], (bag,)), lambda image: [Detection(box_xywh=person, score=0.9),
                                                     Detection(box_xywh=bag, score=0.4)], 2 * CFG.track.detect_every)
    assert all(len(i) == 1 for i in ids) and ids == [ids[0]] * len(ids)


def test_a_pose_detection_replaces_only_the_roi_of_its_own_person():
    """With a pose detector, sameness is the pose: after the first frame the detector sees only B, whose box covers
    most of A's crop (they overlap); B's pose agrees with B's track alone, so it replaces B's crop and A keeps hers."""
    a = np.array([200, 100, 150, 400], np.float32)
    b = np.array([250, 100, 150, 400], np.float32)
    seen, calls = [], []

    class Spy(Scene):
        def __call__(self, image, boxes):
            seen.append(np.asarray(boxes, np.float32).reshape(-1, 4))
            return super().__call__(image, boxes)

    def detect(image):
        calls.append(1)
        return [Detection(box_xywh=box, score=0.9, pose=np.c_[pose_of(box), np.full(17, 0.8)])
                for box in ((a, b) if len(calls) == 1 else (b,))]

    ids = run(Spy([a, b]), detect, 2 * CFG.track.detect_every)
    assert len(calls) >= 2                                      # the search ran (often: they overlap) and missed A
    assert all(len(i) == 2 for i in ids) and ids == [ids[0]] * len(ids)
    assert all(len(s) == 2 for s in seen)                      # on the detection frames too: no one cropped twice


def test_synthetic_video_gt_follows_the_pixels():
    """`livepose synth`'s GT is exact: paint each labelled joint of the scene and of the walkers a colour of its own,
    and every frame shows that colour where the GT puts the joint, through pan, zoom, shake and pasting; joints
    under a walker in front are marked hidden, and those in view otherwise seen."""
    from livepose.config import SynthConfig
    from livepose.synthetic import Still, make_sequence

    rng = np.random.default_rng(0)
    cfg = replace(SynthConfig(), frames=12, size=(240, 320), feather_px=1.0)
    colours = rng.integers(40, 255, (4, 17, 3)).astype(np.uint8)

    def still(shape, boxes, first):
        image = np.zeros((*shape, 3), np.uint8)
        kps = np.array([np.c_[pose_of(b), np.full(17, 2.0)] for b in boxes])
        for p, k in enumerate(kps):
            for j, (x, y, _) in enumerate(k):
                image[int(y) - 4:int(y) + 5, int(x) - 4:int(x) + 5] = colours[first + p, j]
        return Still(image, kps, np.array(boxes, np.float64))

    scene = still((300, 400), [np.array([40, 40, 100, 220]), np.array([250, 60, 100, 200])], 0)
    walkers = [still((300, 200), [np.array([50, 30, 100, 240])], 2), still((300, 200), [np.array([50, 30, 100, 240])], 3)]
    seq = make_sequence(scene, walkers, cfg)
    seen = seq.keypoints[..., 2] == 2
    assert seen.sum() > 100 and (seq.keypoints[..., 2] == 1).any()        # both cases occur
    t, p, j = np.nonzero(seen)
    xy = np.round(seq.keypoints[t, p, j, :2]).astype(int)
    pixels = seq.frames[t, xy[:, 1], xy[:, 0]].astype(int)
    assert np.mean(np.abs(pixels - colours[p, j]).max(axis=1) <= 2) >= 0.98   # the joint's own colour
