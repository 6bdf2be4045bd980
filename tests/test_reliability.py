"""Empty and crowded scenes, people leaving and coming back, long runs, Ctrl-C and kill of `livepose run`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from livepose.config import DetectConfig, PipelineConfig, TrackConfig
from conftest import make_pipeline, reaped, signal_when_ready
from livepose.sources import Frame

ROOT = Path(__file__).resolve().parents[1]
# Random weights pose everyone at scores near 0.05, a phantom to the person filter: tests of plumbing with them
# switch it off, as every other threshold (tests/app/test_app.py does the same).
NO_PERSON_FILTER = replace(TrackConfig(), min_person_joints=0, min_track_score=0.0)


def frames_of(images, fps: float = 30.0, start: int = 0):
    for i, img in enumerate(images, start=start):
        yield Frame(np.ascontiguousarray(img), i, time.monotonic(), i / fps)


def rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_empty_scene_for_many_frames_runs_no_network(small_weights):
    pipe = make_pipeline(small_weights)
    blank = np.full((480, 640, 3), 90, np.uint8)
    results = [pipe.process(f) for f in frames_of([blank] * 60)]
    assert all(not r.track_ids for r in results)
    assert all(r.detector_ran for r in results)          # nobody to follow: look for newcomers every frame
    assert all(r.timings_ms["infer"] == 0.0 for r in results)


def test_crowd_is_capped(shared_data, small_weights):
    """A frame with more people than the cap: at most max_people crops go through the network."""
    img = rgb(shared_data / "images/tfjs_three_people.jpg")
    cfg = replace(PipelineConfig(), detect=replace(DetectConfig(), max_people=2),
                  track=replace(TrackConfig(), min_hits=1))
    from livepose.detect.blazepose import BlazePoseDetector

    pipe = make_pipeline(small_weights, cfg)
    found = len(BlazePoseDetector(DetectConfig())(img))
    assert found >= 3, f"the detector should see the three people (found {found})"
    results = [pipe.process(f) for f in frames_of([img] * 3)]
    assert all(len(r.track_ids) <= 2 for r in results)


def test_partial_people_and_odd_frames_do_not_crash(shared_data, small_weights):
    img = rgb(shared_data / "images/tfjs_pose.jpg")
    h, w = img.shape[:2]
    odd = [img[h // 2:], img[: h // 4], img[:, : w // 5], np.ascontiguousarray(img[::-1].transpose(1, 0, 2)),
           cv2.resize(img, (8, 6)), cv2.resize(img, (3000, 2000))]
    pipe = make_pipeline(small_weights)
    for f in frames_of(odd):
        result = pipe.process(f)
        for person in result.people:
            assert np.isfinite(person.raw).all()


def test_tracks_end_when_people_leave_and_ids_are_not_reused(shared_data, small_weights):
    frames_dir = shared_data / "sequences_gt/jhmdb_goal_keeping_tips_catch_fr_med_2/frames"
    person = [rgb(p) for p in sorted(frames_dir.glob("*.png"))[:8]]
    blank = [np.full_like(person[0], 128)] * (TrackConfig().max_misses + 3)
    pipe = make_pipeline(small_weights, replace(PipelineConfig(), track=NO_PERSON_FILTER))
    first = [pipe.process(f) for f in frames_of(person)]
    ids_before = {i for r in first for i in r.track_ids}
    assert ids_before, "the goalkeeper should be tracked"
    gone = [pipe.process(f) for f in frames_of(blank, start=len(person))]
    assert gone[-1].track_ids == () and pipe.tracker.tracks == []
    again = [pipe.process(f) for f in frames_of(person, start=len(person) + len(blank))]
    ids_after = {i for r in again for i in r.track_ids}
    assert ids_after and not (ids_after & ids_before)


def test_time_going_back_resets_tracks(shared_data, small_weights):
    """A seek or a loop restarts media time: tracks and filters start afresh instead of failing."""
    img = rgb(shared_data / "images/tfjs_pose.jpg")
    pipe = make_pipeline(small_weights, replace(PipelineConfig(), track=replace(NO_PERSON_FILTER, min_hits=1)))
    first = [pipe.process(f) for f in frames_of([img] * 3, start=10)]
    after = pipe.process(next(frames_of([img], start=0)))
    assert first[-1].track_ids and after.track_ids
    assert not set(after.track_ids) & set(first[-1].track_ids)


def test_short_soak_has_flat_memory_and_threads(shared_data, small_weights):
    """CI's short version of `python -m livepose.commands.soak` (the 30-minute figures are in the README)."""
    from livepose.commands.soak import soak

    pipe = make_pipeline(small_weights)
    report = soak(pipe, str(shared_data / "videos/mmpose_demo_street.mp4"), seconds=20, sample_every_s=1.0,
                  warmup_s=5.0)
    assert report["frames"] > 20  # a 5-frame clip, so it looped several times
    assert report["threads_max"] == report["threads_min"]
    assert report["rss_end_mb"] - report["rss_start_mb"] < 100, report


def _run_cli(args: list[str], stdout) -> subprocess.Popen:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONUNBUFFERED": "1"}
    # Ctrl-C's default action back in the child: a test run started in the background inherits SIGINT ignored
    return subprocess.Popen([sys.executable, "-m", "livepose", *args], cwd=ROOT, env=env,
                            stdout=stdout, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


@pytest.fixture(scope="module")
def interrupted_runs(shared_data, small_weights, tmp_path_factory) -> dict[int, tuple[Path, int, str]]:
    """Signal -> (folder, exit status, output) of a `livepose run --out --keypoints` sent it once 5 keypoint lines are
    written (and for SIGKILL a first video block: FFmpeg writes the .avi in 256 KiB blocks, livepose.writers). The
    three runs go side by side, each in its own process; their output goes to a file, never a pipe left unread."""
    video = shared_data / "videos/mmpose_body3d_demo.mp4"
    folders = {sig: tmp_path_factory.mktemp(f"interrupted_{sig.name}") for sig in INTERRUPTS}
    procs = {}
    for sig, folder in folders.items():
        with (folder / "output.txt").open("w") as log:
            procs[sig] = _run_cli(["run", str(video), "--model", str(small_weights), "--out",
                                   str(folder / "annotated.avi"), "--keypoints", str(folder / "keypoints.jsonl")],
                                  stdout=log)

    def ready(sig) -> bool:
        partial = folders[sig] / "keypoints.partial.jsonl"
        if not (partial.exists() and len(partial.read_text().splitlines()) >= 5):
            return False
        video_partial = folders[sig] / "annotated.partial.avi"
        return sig != signal.SIGKILL or (video_partial.exists() and video_partial.stat().st_size > 0)

    with reaped(procs):
        signal_when_ready(procs, ready, lambda sig: (folders[sig] / "output.txt").read_text(),
                          timeout=300, poll_s=0.2)   # three starts share the cores
        for proc in procs.values():
            proc.wait(timeout=60)
    return {sig: (folders[sig], procs[sig].returncode, (folders[sig] / "output.txt").read_text()) for sig in INTERRUPTS}


@pytest.mark.parametrize("sig", INTERRUPTS)
def test_interrupted_run_leaves_valid_outputs(interrupted_runs, sig):
    folder, returncode, output = interrupted_runs[sig]
    out, keypoints, partial = folder / "annotated.avi", folder / "keypoints.jsonl", folder / "keypoints.partial.jsonl"
    if sig != signal.SIGKILL:     # Ctrl-C and `kill` both finish the outputs
        assert returncode == (130 if sig == signal.SIGINT else 143), output   # 128 + the signal
        assert "interrupted" in output
        final_jsonl, final_video = keypoints, out
    else:
        final_jsonl, final_video = partial, folder / "annotated.partial.avi"
    lines = final_jsonl.read_text().splitlines()
    complete = lines if sig != signal.SIGKILL else lines[:-1]  # a kill -9 may cut the last line
    records = [json.loads(line) for line in complete]
    assert [r["frame"] for r in records] == list(range(len(records)))
    cap = cv2.VideoCapture(str(final_video))
    ok, _ = cap.read()
    cap.release()
    assert ok, f"{final_video} is not playable"


def test_no_thread_left_behind_by_worker(shared_data, small_weights):
    from livepose.pipeline import PipelineWorker
    from livepose.sources import open_source

    before = set(threading.enumerate())
    pipe = make_pipeline(small_weights)
    results = []
    source = open_source(str(shared_data / "videos/mmpose_body3d_demo.mp4"))
    worker = PipelineWorker(source, pipe, results.append)
    worker.start()
    deadline = time.monotonic() + 60
    while not results and time.monotonic() < deadline:
        time.sleep(0.05)
    t0 = time.monotonic()
    worker.stop()
    source.close()
    assert time.monotonic() - t0 < 1.5
    assert results and not worker.is_alive()
    assert set(threading.enumerate()) - before == set()


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "foreign", "foreign-meta"])
def test_damaged_weights_file_is_a_clear_error_and_writes_nothing(shared_data, small_weights, tmp_path, damage, capsys):
    """A cut download, flipped bytes, a zip or an .npz that is not a livepose one: one line, exit 2, no output."""
    import zipfile

    from livepose.cli import main as cli

    data = small_weights.read_bytes()
    bad = tmp_path / f"{damage}.npz"
    if damage == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "corrupt":
        mid = len(data) // 2
        bad.write_bytes(data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 4096]) + data[mid + 4096:])
    elif damage == "foreign":
        with zipfile.ZipFile(bad, "w") as z:
            z.writestr("something.npy", b"not weights")
    else:                                                   # an .npz with a __meta__ entry of another kind
        np.savez(bad, __meta__=np.frombuffer(json.dumps({"format": "other"}).encode(), np.uint8))
    before = bad.read_bytes()
    keypoints = tmp_path / "k.jsonl"
    video = shared_data / "videos" / "posetrack18_000001_mpiinew_test.mp4"
    assert cli(["run", str(video), "--model", str(bad), "--keypoints", str(keypoints)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"livepose run: {bad}: not a") and "Traceback" not in err, err
    assert not keypoints.exists() and not list(tmp_path.glob("k.partial*"))
    # calibrate reads --model before its reference network's pass over the dataset (which it used to do first)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("livepose.commands.calibrate.labelled_peaks", lambda *a: pytest.fail("ran before reading --model"))
        assert cli(["calibrate", str(shared_data / "images_gt" / "annotations.pose17.json"), "--model", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"livepose calibrate: {bad}: not a")
    assert cli(["eval", str(shared_data / "images_gt" / "annotations.pose17.json"), "--model", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"livepose eval: {bad}: not a")
    assert bad.read_bytes() == before                     # calibrate rewrites in place only after a clean read
    from livepose.commands.soak import main as soak

    bench_json = tmp_path / "bench.json"
    for prog, argv in (("livepose bench", ["bench", str(video), "--no-rival", "--json", str(bench_json)]),
                       ("livepose bench-app", ["bench-app", str(video), "--json", str(bench_json)])):
        assert cli([*argv, "--model", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"{prog}: {bad}: not a") and "Traceback" not in err, err
    assert not bench_json.exists()
    assert soak([str(video), "--minutes", "0.1", "--model", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"livepose soak: {bad}: not a")
