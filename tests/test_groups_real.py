"""Groups with the shipped weights and the default detector: everyone in the crowd stills and in a synthetic group
video found on the first frame and kept, few duplicates or phantoms, live accuracy close to ground-truth boxes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import make_pipeline
from livepose.config import EvalConfig, PipelineConfig, SynthConfig
from livepose.data import ASSETS
from livepose.nets.weights import SHIPPED

DEFAULT = ASSETS / SHIPPED["default"]
pytestmark = pytest.mark.skipif(not DEFAULT.exists(), reason=f"shipped weights {DEFAULT} missing")
CROWDS = ("coco_val2017/", "crowdpose/", "aic/")          # the images_gt subsets with several people an image


@pytest.fixture(scope="module")
def pipeline():
    from livepose.detect import make_detector

    cfg = PipelineConfig()
    cfg = replace(cfg, track=replace(cfg.track, background_detect=False), smooth=replace(cfg.smooth, method="none"))
    pipe = make_pipeline(DEFAULT, cfg)
    pipe.detector = make_detector(cfg)                  # the default detector, not make_pipeline's BlazePose
    return pipe


def test_the_first_frame_of_a_crowd_still_poses_everyone(shared_data, pipeline, tmp_path):
    """Each crowd still of images_gt as a one-frame stream: every labelled person is shown (matched by OKS, as
    `livepose eval` does), at a PCK within 3 points of the same network on the GT boxes. Measured: 27 of 27
    people; before issue 28 the first frame showed no one."""
    from conftest import relocated
    from livepose.commands.evaluate import people_metrics
    from livepose.data import load_dataset

    src = shared_data / "images_gt" / "annotations.pose17.json"
    ds = load_dataset(relocated(src, tmp_path / "crowds.pose17.json",
                                lambda items: [i for i in items if i["file"].startswith(CROWDS)]))
    r = people_metrics(ds, list(ds.images()), pipeline, EvalConfig())
    print(f"\n{r}")
    assert r["recall"] >= 0.95
    assert r["pck_live@0.2"] >= r["pck_gt_boxes@0.2"] - 0.03


def test_a_synthetic_group_video(shared_data, pipeline):
    """`livepose synth` scene 3 (CrowdPose: two people by a van; two walkers cross in front of them under a panning,
    zooming, shaking camera): people recall, duplicates and phantoms, id switches, live PCK beside GT-box PCK.
    Measured 2026-12-08 (m4): recall 0.92, 0 false, 1 id switch, PCK@0.2 0.649 vs 0.586 on GT boxes, since the search
    runs on every frame while a track is lost or two overlap; every 3rd frame gave recall 0.84, PCK 0.554 (xfail)."""
    from livepose.commands.evaluate import people_metrics
    from livepose.data import Dataset, Entry
    from livepose.synthetic import SCENES, WALKERS, load_stills, make_sequence

    cfg = replace(SynthConfig(), frames=24)
    scene, *walkers = load_stills(shared_data / "images_gt" / "annotations.pose17.json", (SCENES[3],) + WALKERS[:2])
    seq = make_sequence(scene, walkers, cfg)
    entries = []
    for t in range(cfg.frames):
        labelled = (seq.keypoints[t, :, :, 2] > 0).any(axis=1)
        entries.append(Entry(None, t, seq.keypoints[t, labelled], seq.boxes[t, labelled],
                             np.nonzero(labelled)[0], seq.visible[t, labelled]))
    ds = Dataset(Path("synth"), "synth", entries, True, cfg.fps)
    r = people_metrics(ds, list(seq.frames), pipeline, EvalConfig())
    print(f"\n{r}")
    assert r["recall"] >= 0.9
    assert r["false_per_100"] <= 1.0
    assert r["id_switches"] <= 1
    assert r["pck_live@0.2"] >= r["pck_gt_boxes@0.2"] - 0.03
