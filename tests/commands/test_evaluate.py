"""`livepose eval` end to end on real GT: a few images_gt images and the JHMDB clip (GT on every frame)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import relocated
from livepose.cli import main as cli
from livepose.data import ASSETS
from livepose.nets.weights import SHIPPED

JHMDB = "sequences_gt/jhmdb_goal_keeping_tips_catch_fr_med_2/gt.pose17.json"
TRAINED = ASSETS / SHIPPED["default"]


def image_subset(shared_data: Path, folder: Path, subsets: tuple[str, ...]) -> Path:
    """The first image of each subset of images_gt."""
    return relocated(shared_data / "images_gt" / "annotations.pose17.json", folder / "subset.pose17.json",
                     lambda images: [next(im for im in images if im["subset"] == s) for s in subsets])


def finite_in(value, lo: float, hi: float) -> bool:
    return value is not None and math.isfinite(value) and lo <= value <= hi


def test_eval_images_and_clip_writes_sane_json(shared_data, small_weights, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    image_subset(shared_data, folder, ("coco_val2017", "mpii", "crowdpose"))
    relocated(shared_data / JHMDB, folder / "jhmdb.pose17.json")
    out, plot = tmp_path / "eval.json", tmp_path / "tradeoff.png"
    assert cli(["eval", str(folder), "--model", str(small_weights), "--no-rival", "--json", str(out),
                "--plot", str(plot)]) == 0
    r = json.loads(out.read_text())
    images, clip = r["datasets"]["subset"], r["datasets"]["Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2"]
    assert images["kind"] == "images" and images["images"] == 3 and images["people"] >= 3
    assert set(images["accuracy"]) == {"livepose"} and set(images["accuracy"]["livepose"]) == {"gt", "detector"}
    for mode, acc in images["accuracy"]["livepose"].items():
        assert set(acc["oks_ap"]) >= {"AP", "AP50", "AP75", "AR"}
        assert all(finite_in(v, 0, 1) for v in acc["oks_ap"].values() if v != -1)
        for alpha in ("0.2", "0.5"):
            assert finite_in(acc["pck"][alpha]["overall"], 0, 1) and acc["pck"][alpha]["scored"] > 0
            assert len(acc["pck"][alpha]["per_joint"]) == 17
        assert acc["pck"]["0.2"]["overall"] <= acc["pck"]["0.5"]["overall"]
        assert 0 <= acc["found"] <= acc["people"] == images["people"]
    assert images["accuracy"]["livepose"]["gt"]["found"] == images["people"]   # one prediction per GT box

    assert clip["kind"] == "sequence" and clip["frames"] == 40 and clip["fps"] == 30
    rows = clip["temporal"]
    assert set(rows) == {"ground truth"} | {f"livepose {m} {v}" for m in ("gt", "detector")
                                           for v in ("raw", "kalman", "oneeuro")}
    assert rows["ground truth"]["pck@0.2"] == 1.0 and rows["ground truth"]["accel_error_px"] == 0.0
    assert finite_in(rows["livepose gt raw"]["jitter_px"], 0, 1e4)
    for row in rows.values():
        assert row["pck@0.2"] is None or 0 <= row["pck@0.2"] <= 1
    # per joint too (the model card's JHMDB table): JHMDB labels no face joint, so those are null, not 0
    per_joint = rows["livepose gt raw"]["pck_per_joint"]["0.2"]
    assert per_joint["nose"] is None and all(0 <= per_joint[j] <= 1 for j in ("left_shoulder", "right_ankle"))
    for name, row in rows.items():   # the smoothed streams also say how far they trail the raw one
        assert ("lag_behind_raw_frames" in row) == name.endswith(("kalman", "oneeuro"))
    lag = rows["livepose gt kalman"]["lag_behind_raw_frames"]
    assert lag is None or finite_in(lag, -5, 5)      # None: no joint smoothed on two frames in a row (low scores)
    sweep = clip["tradeoff"]["gt"]
    assert {p["method"] for p in sweep} == {"kalman", "oneeuro"} and len(sweep) > 10
    assert plot.stat().st_size > 10_000


def test_rivals_score_high_on_real_people(shared_data, small_weights, tmp_path):
    """MediaPipe and MoveNet Thunder are decent models: their keypoints, mapped to COCO-17 in image pixels, must
    land on the human GT (a coordinate, scale or left/right mistake in either adapter scores ~0.1).

    PCK@0.5 x torso is about JHMDB's usual 0.2 x person-box threshold; a left/right or index mistake scores ~0.1.
    """
    folder = tmp_path / "data"
    folder.mkdir()
    image_subset(shared_data, folder, ("coco_val2017", "h36m"))
    relocated(shared_data / JHMDB, folder / "jhmdb.pose17.json")     # both in one run: the rivals load once
    out = tmp_path / "eval.json"
    assert cli(["eval", str(folder), "--model", str(small_weights), "--boxes", "gt", "--json", str(out)]) == 0
    datasets = json.loads(out.read_text())["datasets"]
    images = datasets["subset"]["accuracy"]
    assert set(images) == {"livepose", "mediapipe", "movenet"} and set(images["movenet"]) == {"gt"}
    assert images["mediapipe"]["gt"]["pck"]["0.2"]["overall"] >= 0.7     # big, clear people on GT regions
    assert images["movenet"]["gt"]["pck"]["0.2"]["overall"] >= 0.75    # measured 0.793 on this subset
    rows = datasets["Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2"]
    for rival in ("mediapipe", "movenet"):
        tracked = rows["temporal"][f"{rival} tracking"]
        assert tracked["pck@0.5"] >= 0.75 and tracked["pck@0.2"] >= 0.4, rival
        assert abs(tracked["lag_frames"]) <= 3, rival


@pytest.mark.skipif(not TRAINED.exists(), reason=f"trained weights {TRAINED.name} not shipped yet")
def test_trained_model_is_accurate_on_the_jhmdb_clip(shared_data, tmp_path):
    out = tmp_path / "clip.json"
    assert cli(["eval", str(shared_data / JHMDB), "--boxes", "gt", "--no-rival", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["datasets"]["Goal_Keeping_Tips_catch_f_cm_np1_fr_med_2"]["temporal"]
    assert rows["livepose gt raw"]["pck@0.5"] >= 0.6
    # smoothing must not cost accuracy and must cut the network's frame-to-frame noise
    assert rows["livepose gt kalman"]["pck@0.5"] >= rows["livepose gt raw"]["pck@0.5"] - 0.05
    assert rows["livepose gt kalman"]["jitter_px"] < rows["livepose gt raw"]["jitter_px"]
    assert np.isfinite(rows["livepose gt kalman"]["lag_frames"])
    assert 0 <= rows["livepose gt kalman"]["lag_behind_raw_frames"] <= 1


FAST = ASSETS / SHIPPED["fast"]


def gt_box_accuracy(shared_data: Path, out: Path, *args: str) -> dict:
    """livepose's accuracy from `livepose eval` of images_gt on its GT boxes (Keras, no rival), given ``args``."""
    assert cli(["eval", str(shared_data / "images_gt" / "annotations.pose17.json"), "--boxes", "gt", "--no-rival",
                "--runtime", "keras", "--json", str(out), *args]) == 0
    return json.loads(out.read_text())["datasets"]["annotations"]["accuracy"]["livepose"]["gt"]


@pytest.fixture(scope="module")
def fast_accuracy(shared_data, tmp_path_factory) -> dict:
    """`--model fast` on images_gt's GT boxes: the accuracy floor and the flip test both compare against it, so it
    is evaluated once for the two."""
    if not FAST.exists():
        pytest.skip(f"shipped weights {FAST.name} missing")
    return gt_box_accuracy(shared_data, tmp_path_factory.mktemp("fast") / "fast.json", "--model", "fast")


@pytest.mark.skipif(not (TRAINED.exists() and FAST.exists()), reason="shipped weights missing")
def test_default_clears_an_accuracy_floor_the_from_scratch_model_fails(shared_data, tmp_path, fast_accuracy):
    """Issue #25: the default (m4, SimpleBaseline on MoveNet's pose-pretrained backbone) on images_gt's 37 unseen
    people with GT boxes. Measured 2026-12-07: m4 0.755 (m1 0.748), v10 (`--model fast`, ResNet-18 from scratch) 0.552."""
    pck = {}
    for name, acc in (("fast", fast_accuracy),
                      ("default", gt_box_accuracy(shared_data, tmp_path / "default.json", "--model", "default"))):
        assert acc["found"] == acc["people"] == 37
        pck[name] = acc["pck"]["0.2"]["overall"]
    print(pck)
    assert pck["default"] >= 0.70 > pck["fast"] and pck["default"] >= pck["fast"] + 0.15


@pytest.mark.skipif(not FAST.exists(), reason=f"shipped weights {FAST.name} missing")
def test_flip_test_makes_the_default_more_accurate(shared_data, tmp_path, fast_accuracy):
    """``--flip-test`` (the crop and its mirror in one batch, heatmaps averaged) buys accuracy for about twice the
    network time: on images_gt's 37 people with GT boxes, measured 2026-12-05 with v10 (`--model fast`), PCK@0.2
    0.552 -> 0.580 and OKS AP 0.354 -> 0.371 (docs/measurements.md, "Flip test")."""
    acc = {False: fast_accuracy,
           True: gt_box_accuracy(shared_data, tmp_path / "flip.json", "--model", "fast", "--flip-test")}
    plain, flipped = acc[False]["pck"]["0.2"]["overall"], acc[True]["pck"]["0.2"]["overall"]
    ap = {k: v["oks_ap"]["AP"] for k, v in acc.items()}
    print(f"\nPCK@0.2 {plain:.3f} -> {flipped:.3f}, AP {ap[False]:.3f} -> {ap[True]:.3f}")
    assert flipped >= plain + 0.01 and ap[True] >= ap[False]


def _malformed(d: dict, case: str) -> object:
    if case == "top-level list":
        return d["images"]
    person = d["images"][1]["people"][0]
    if case == "keypoints as a string":
        person["keypoints"] = "0 0 2"
    elif case == "wrong keypoint shape":
        person["keypoints"] = person["keypoints"][:14]
    elif case == "bbox of 3":
        person["bbox"] = person["bbox"][:3]
    return d


@pytest.mark.parametrize("case, field", [("top-level list", "top-level list"),
                                         ("keypoints as a string", "images[1].people[0].keypoints"),
                                         ("wrong keypoint shape", "images[1].people[0].keypoints"),
                                         ("bbox of 3", "images[1].people[0].bbox")])
def test_malformed_dataset_is_one_line_naming_file_record_and_field(shared_data, tmp_path, capsys, case, field):
    """Issue 29 item 6: these were IndexError/AttributeError tracebacks; now one line, exit 2, before the model."""
    src = image_subset(shared_data, tmp_path, ("coco_val2017", "mpii"))
    bad = tmp_path / "bad.pose17.json"
    bad.write_text(json.dumps(_malformed(json.loads(src.read_text()), case)))
    assert cli(["eval", str(bad), "--no-rival", "--model", "no_such_weights.npz"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and field in err and "Traceback" not in err, err


def test_missing_images_are_skipped_and_counted(shared_data, small_weights, tmp_path, capsys):
    """Issue 29 item 6: one missing image used to abort the whole evaluation."""
    src = image_subset(shared_data, tmp_path, ("coco_val2017", "mpii", "aic"))
    d = json.loads(src.read_text())
    d["images"][1]["file"] = str(tmp_path / "gone.jpg")
    src.write_text(json.dumps(d))
    out = tmp_path / "r.json"
    assert cli(["eval", str(src), "--no-rival", "--boxes", "gt", "--model", str(small_weights), "--runtime", "keras",
                "--json", str(out)]) == 0
    assert "skipping 1 missing images" in capsys.readouterr().err
    assert json.loads(out.read_text())["datasets"]["subset"]["images"] == 2


def test_a_hidden_person_does_not_take_the_pose_of_the_one_in_front():
    """Sequences (issue 28): a person hidden behind another has her labelled joints about where the front person's
    are. Matched together, the front person's pose can go to her (it lies a little closer), counting the front
    person as missed and an id switch; the people in view are matched first, the hidden ones to what is left."""
    from livepose.config import EvalConfig
    from livepose.commands.evaluate import match_indices, match_visible_first
    from livepose.data import Entry

    box = np.array([100, 100, 120, 360], np.float64)
    front = np.c_[box[:2] + np.stack([np.tile([0.2, 0.8], 9)[:17], np.linspace(0.05, 0.95, 17)], 1) * box[2:],
                  np.full(17, 2.0)]
    hidden = front + [6.0, 0.0, 0.0]
    pred = front + [4.0, 0.0, -1.0]                    # the front person's pose, a little off towards the hidden one
    entry = Entry(None, 0, np.stack([front, hidden]), np.stack([box, box]), np.arange(2), np.array([True, False]))
    min_oks = EvalConfig().match_min_oks
    assert match_indices(pred[None], entry.gt, entry.boxes, min_oks)[0].tolist() == [-1, 0]   # the old way
    assert match_visible_first(pred[None], entry, entry.visible, min_oks)[0].tolist() == [0, -1]
