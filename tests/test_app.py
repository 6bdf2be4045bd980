"""The desktop app, driven as a user would: the real MainWindow, a real pipeline, real videos from shared/data.

The model is the shipped one when it exists, else random weights at 128x96 (fast). Random weights give
keypoint scores around 0.05, so with them the drawing and smoothing thresholds are set to 0 to get skeletons.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from livepose.qt import ensure_app

ensure_app(headless=True)

from PyQt5.QtCore import QPointF, Qt, QTimer  # noqa: E402
from PyQt5.QtGui import QColor  # noqa: E402
from PyQt5.QtWidgets import QFileDialog  # noqa: E402

from livepose.app import main as app_main  # noqa: E402
from livepose.app import window as window_module  # noqa: E402
from livepose.app.settings import AppSettings, load_settings, save_settings  # noqa: E402
from livepose.app.window import MainWindow  # noqa: E402
from livepose.config import RenderConfig, SourceConfig  # noqa: E402
from livepose.skeleton import LIMBS, track_colour  # noqa: E402
from livepose.sources import open_source  # noqa: E402
from livepose.writers import partial_path, read_jsonl  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SQUATS = "sequences_pseudo_gt/tfjs_pose_squats/pose_squats.mp4"   # white background: skeleton colours stand out
COLOUR_TOLERANCE = 90        # RGB distance to the track colour that counts as "drawn here"
FAR_PX = 14                  # widget px from any drawn joint/limb/label that counts as "elsewhere"
WAIT_MS = 30_000

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="session")
def model_path(small_weights) -> tuple[Path, bool]:
    """(weights, random?): the UI is tested with a random-weight r18 at 128x96 and every threshold at 0, so
    drawing, toggling and recording are exercised on every keypoint whatever the shipped model's accuracy."""
    return small_weights, True


@pytest.fixture(scope="session")
def built(model_path):
    """One pipeline for the session (loading TensorFlow is the slow part); each window resets it."""
    from livepose.runner import add_model_arguments, build_pipeline

    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    pipeline, name = build_pipeline(parser.parse_args(["--model", str(model_path[0])]))
    return pipeline, name, pipeline.bank.cfg


@pytest.fixture
def make_window(built, model_path, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    pipeline, name, smooth_cfg = built
    random_weights = model_path[1]
    windows = []

    def make(source_cfg: SourceConfig = SourceConfig(mode="every"), settings: AppSettings | None = None):
        base = dataclasses.replace(smooth_cfg, min_score=0.0) if random_weights else smooth_cfg
        pipeline.set_smoothing(base)
        render = RenderConfig(min_score=0.0) if random_weights else RenderConfig()
        w = MainWindow(pipeline, name, settings or AppSettings(), render_cfg=render, source_cfg=source_cfg)
        qtbot.addWidget(w)
        w.resize(1500, 1000)
        w.show()
        qtbot.waitExposed(w)
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()


def wait_for_people(qtbot, w, check=lambda r: True):
    qtbot.waitUntil(lambda: w.view.result is not None and len(w.view.result.track_ids) > 0 and check(w.view.result),
                    timeout=WAIT_MS)
    return w.view.result


def pause_and_settle(qtbot, w):
    """Pause the file and let the frame in flight arrive, so the view holds a fixed result."""
    w.toggle_play()
    assert w.source.paused
    seen = {"result": None, "since": time.monotonic()}

    def unchanged_for_half_a_second() -> bool:
        if w.view.result is not seen["result"]:
            seen.update(result=w.view.result, since=time.monotonic())
        return time.monotonic() - seen["since"] > 0.5

    qtbot.waitUntil(unchanged_for_half_a_second, timeout=WAIT_MS)


def colour_near(image, point: QPointF, colour: QColor, radius: int = 1) -> bool:
    x0, y0 = int(round(point.x())), int(round(point.y()))
    target = np.array([colour.red(), colour.green(), colour.blue()], float)
    for y in range(y0 - radius, y0 + radius + 1):
        for x in range(x0 - radius, x0 + radius + 1):
            if 0 <= x < image.width() and 0 <= y < image.height():
                c = QColor(image.pixel(x, y))
                if np.linalg.norm(np.array([c.red(), c.green(), c.blue()], float) - target) < COLOUR_TOLERANCE:
                    return True
    return False


def drawn(w, result, which: str) -> tuple[list[QPointF], list[tuple[QPointF, QPointF]], QColor]:
    """Widget positions of the drawn joints and limbs of the first person (``which``: "smoothed" or "raw")."""
    person = result.people[0]
    kps = getattr(person, which)
    scores = person.smoothed_scores if which == "smoothed" else person.raw_scores
    ok = np.isfinite(kps).all(axis=1) & (scores >= w.view.render_cfg.min_score)
    pts = [w.view.frame_to_widget(*map(float, kps[j])) if ok[j] else None for j in range(len(kps))]
    limbs = [(pts[a], pts[b]) for a, b in LIMBS if ok[a] and ok[b]]
    return [p for p in pts if p is not None], limbs, QColor(*track_colour(person.track_id))


def far_from(p: QPointF, points, limbs) -> bool:
    q = np.array([p.x(), p.y()])
    for a in points:
        if np.hypot(a.x() - q[0], a.y() - q[1]) < FAR_PX:
            return False
    for a, b in limbs:
        a, b = np.array([a.x(), a.y()]), np.array([b.x(), b.y()])
        t = np.clip(np.dot(q - a, b - a) / max(np.dot(b - a, b - a), 1e-9), 0, 1)
        if np.linalg.norm(a + t * (b - a) - q) < FAR_PX:
            return False
    return True


def match_fraction(image, points, colour) -> float:
    return float(np.mean([colour_near(image, p, colour) for p in points]))


def test_frames_appear_and_skeleton_is_drawn_at_the_keypoints(make_window, shared_data, qtbot):
    w = make_window()
    assert w.open_source(str(shared_data / SQUATS))
    wait_for_people(qtbot, w)
    pause_and_settle(qtbot, w)
    result = w.view.result
    image = w.view.grab().toImage()
    points, limbs, colour = drawn(w, result, "smoothed")
    assert len(points) >= 10
    assert match_fraction(image, points, colour) >= 0.9
    # elsewhere on the frame (away from joints, limbs, the id label and the HUD) the track colour is absent
    label = [w.view.frame_to_widget(float(result.people[0].box[0]), float(result.people[0].box[1]))]
    top_left = w.view.frame_to_widget(0, 0)
    bottom_right = w.view.frame_to_widget(result.frame.image.shape[1], result.frame.image.shape[0])
    grid = [QPointF(x, y) for x in np.linspace(top_left.x() + 5, bottom_right.x() - 5, 25)
            for y in np.linspace(max(top_left.y(), 90) + 5, bottom_right.y() - 5, 25)]
    raw_points, raw_limbs, _ = drawn(w, result, "raw")
    elsewhere = [p for p in grid if far_from(p, points + raw_points + label, limbs + raw_limbs)]
    assert len(elsewhere) > 200
    assert match_fraction(image, elsewhere, colour) < 0.05
    # the HUD reports the model and the people
    assert w.model_name in w.view.hud[0] and "1 people" in w.view.hud[0]


def test_k_switches_between_smoothed_and_raw_keypoints(make_window, shared_data, qtbot):
    w = make_window()
    w.open_source(str(shared_data / SQUATS))
    # smoothing on: the drawn joints are the filter's output, which differs from the raw ones
    result = wait_for_people(qtbot, w, lambda r: np.nanmax(np.abs(r.people[0].raw - r.people[0].smoothed)) > 5)
    assert result.smooth_cfg.method == "kalman"
    pause_and_settle(qtbot, w)
    result = w.view.result
    image = w.view.grab().toImage()
    smoothed, _, colour = drawn(w, result, "smoothed")
    assert match_fraction(image, smoothed, colour) >= 0.9

    w.activateWindow()
    qtbot.keyClick(w, Qt.Key_K)
    assert w.live.smooth_cfg.method == "none"
    assert not w.smoothing.enabled_box.isChecked()
    w.step()
    qtbot.waitUntil(lambda: w.view.result.smooth_cfg.method == "none" and len(w.view.result.track_ids) > 0,
                    timeout=WAIT_MS)
    result = w.view.result
    person = result.people[0]
    np.testing.assert_array_equal(person.smoothed, person.raw)     # what is drawn is the raw pose
    image = w.view.grab().toImage()
    raw, _, colour = drawn(w, result, "raw")
    assert match_fraction(image, raw, colour) >= 0.9

    qtbot.keyClick(w, Qt.Key_K)
    assert w.live.smooth_cfg.method == "kalman"                    # K brings back the filter that was on
    w.step()
    qtbot.waitUntil(lambda: w.view.result.smooth_cfg.method == "kalman", timeout=WAIT_MS)


def test_knobs_change_the_pipeline_config_live(make_window, shared_data, qtbot, built):
    pipeline = built[0]
    w = make_window()
    w.open_source(str(shared_data / SQUATS))
    wait_for_people(qtbot, w)
    panel = w.smoothing
    before = pipeline.bank.cfg.process_noise
    panel.process_noise.stepUp()
    qtbot.waitUntil(lambda: pipeline.bank.cfg.process_noise == pytest.approx(2 * before), timeout=WAIT_MS)
    panel.measurement_noise.setValue(7.5)
    qtbot.waitUntil(lambda: pipeline.bank.cfg.measurement_noise == 7.5, timeout=WAIT_MS)
    assert not panel.min_cutoff.isEnabled()

    panel.method_combo.setCurrentIndex(panel.method_combo.findData("oneeuro"))
    panel.min_cutoff.setValue(0.4)
    panel.beta.setValue(0.2)
    qtbot.waitUntil(lambda: (pipeline.bank.cfg.method, pipeline.bank.cfg.oneeuro_min_cutoff,
                             pipeline.bank.cfg.oneeuro_beta) == ("oneeuro", 0.4, 0.2), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: w.view.result.smooth_cfg.method == "oneeuro", timeout=WAIT_MS)
    assert w.worker.is_alive()                                      # applied without restarting the stream
    assert panel.min_cutoff.isEnabled() and not panel.process_noise.isEnabled()

    w.close()                                                       # and remembered for the next run
    saved = load_settings()
    assert (saved.filter, saved.smoothing, saved.oneeuro_min_cutoff, saved.measurement_noise) == (
        "oneeuro", True, 0.4, 7.5)
    assert saved.last_source == str(shared_data / SQUATS)


def test_record_export_and_screenshot_write_valid_files(make_window, shared_data, qtbot, tmp_path, monkeypatch):
    w = make_window()
    w.open_source(str(shared_data / SQUATS))
    wait_for_people(qtbot, w)
    video, jsonl, csv_path, png = (tmp_path / n for n in ("rec.avi", "kp.jsonl", "kp.csv", "shot.png"))
    answers = iter([str(video), str(jsonl)])
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (next(answers), ""))
    w.record_action.trigger()
    w.export_action.trigger()
    assert w.record_action.isChecked() and w.export_action.isChecked()
    start = w.view.result.frame.index
    qtbot.waitUntil(lambda: w.view.result.frame.index >= start + 6, timeout=WAIT_MS)
    w.record_action.trigger()
    w.export_action.trigger()
    assert not w.record_action.isChecked() and not w.export_action.isChecked()
    w.start_export(csv_path)
    start = w.view.result.frame.index
    # until two frames have passed and a person's rows were flushed (random weights lose the track now and then)
    written = partial_path(csv_path)
    qtbot.waitUntil(lambda: w.view.result.frame.index >= start + 2 and written.exists()
                    and len(written.read_text().splitlines()) > 17, timeout=WAIT_MS)
    w.stop_recording()
    w.save_screenshot(png)

    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    records = read_jsonl(jsonl)
    assert records.partial_line is None
    assert len(frames) >= 5 and len(frames) == len(records.records)      # one video frame per processed frame
    assert frames[0].shape == (1280, 720, 3)
    source = cv2.VideoCapture(str(shared_data / SQUATS))
    source.set(cv2.CAP_PROP_POS_FRAMES, records.records[0]["frame"])
    plain = source.read()[1]
    source.release()
    hud = (slice(8, 40), slice(8, 300))      # the HUD's translucent panel darkens the white wall
    assert frames[0][hud].mean() < plain[hud].mean() - 40
    indices = [r["frame"] for r in records.records]
    assert indices == sorted(set(indices))
    person = next(r["people"][0] for r in records.records if r["people"])
    assert len(person["raw"]) == 17 and len(person["smoothed"]) == 17 and len(person["raw"][0]) == 3
    assert records.records[0]["filter"]["method"] == "kalman"
    rows = csv_path.read_text().splitlines()
    assert rows[0].startswith("frame,t,id,joint") and len(rows) > 17
    shot = cv2.imread(str(png))
    assert shot.shape == (1280, 720, 3)
    original = cv2.cvtColor(w.view.result.frame.image, cv2.COLOR_RGB2BGR)
    assert np.mean(np.any(shot != original, axis=2)) > 0.001             # skeleton and HUD burnt in


def test_step_seek_and_loop_keep_the_stream_alive(make_window, shared_data, qtbot):
    w = make_window()
    w.open_source(str(shared_data / SQUATS))
    assert w.playback.slider.maximum() == 64 and w.playback.slider.isEnabled()
    wait_for_people(qtbot, w)
    pause_and_settle(qtbot, w)
    index = w.view.result.frame.index
    w.playback.step_button.click()
    qtbot.waitUntil(lambda: w.view.result.frame.index == index + 1, timeout=WAIT_MS)
    w.playback.slider.setValue(3)                      # backwards: tracks and filters start afresh
    qtbot.waitUntil(lambda: w.view.result.frame.index == 3, timeout=WAIT_MS)
    w.playback.loop_box.setChecked(True)
    w.playback.slider.setValue(62)
    qtbot.waitUntil(lambda: w.view.result.frame.index == 62, timeout=WAIT_MS)
    w.playback.play_button.click()
    qtbot.waitUntil(lambda: w.view.result.frame.index < 5, timeout=WAIT_MS)   # wrapped around
    assert w.worker.is_alive() and w.settings.loop


def test_closing_stops_every_thread_within_a_second_and_finishes_files(make_window, shared_data, qtbot, tmp_path):
    w = make_window(SourceConfig(mode="realtime"))
    w.open_source(str(shared_data / SQUATS))
    w.start_recording(tmp_path / "rec.avi")
    w.start_export(tmp_path / "kp.jsonl")
    wait_for_people(qtbot, w)
    before = {t.ident for t in threading.enumerate()} - {w.worker.ident}
    t0 = time.monotonic()
    w.close()
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0, elapsed
    leftover = [t.name for t in threading.enumerate() if t.ident not in before]
    assert leftover == []
    assert (tmp_path / "rec.avi").exists() and (tmp_path / "kp.jsonl").exists()
    assert not list(tmp_path.glob("*.partial.*"))


def test_without_a_source_or_camera_the_window_says_so(make_window, qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr(window_module, "list_cameras", lambda *a, **k: [])
    w = make_window()
    assert not w.start(None)
    assert w.stack.currentWidget() is w.empty and "No camera found" in w.empty.label.text()
    assert not w.open_source(str(tmp_path / "missing.mp4"))
    assert "Could not open" in w.empty.label.text() and "does not exist" in w.empty.label.text()
    assert w.worker is None


class FlakyCamera:
    """A camera double playing real frames, which dies after ``fail_after`` reads until it is reopened."""

    def __init__(self, frames, fail_after=None, opens=True):
        self.frames, self.fail_after, self.opens, self.reads = frames, fail_after, opens, 0

    def read(self):
        time.sleep(0.03)
        if self.fail_after is not None and self.reads >= self.fail_after:
            return False, None
        self.reads += 1
        return True, self.frames[self.reads % len(self.frames)]

    def isOpened(self):
        return self.opens

    def release(self):
        pass

    def get(self, prop):
        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0


def test_camera_lost_mid_stream_reconnects_and_the_window_stays_responsive(make_window, shared_data, qtbot,
                                                                           monkeypatch):
    cap = cv2.VideoCapture(str(shared_data / SQUATS))
    frames = [cap.read()[1] for _ in range(5)]
    cap.release()
    opened = []

    def factory():   # first camera dies after 15 frames, the next two openings fail, then it is back
        n = len(opened)
        cam = FlakyCamera(frames, fail_after=15) if n == 0 else FlakyCamera(frames, opens=n > 2)
        opened.append(cam)
        return cam

    monkeypatch.setattr(window_module, "open_source", functools.partial(open_source, capture_factory=factory))
    cfg = SourceConfig(read_timeout_s=0.2, stall_timeout_s=0.2, max_read_failures=2, reconnect_initial_s=0.3,
                       reconnect_max_s=0.3)
    w = make_window(cfg)
    statuses = []
    w.bridge.status_changed.connect(lambda status, detail: statuses.append(status))
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    assert w.open_source("0")
    qtbot.waitUntil(lambda: "reconnecting" in statuses, timeout=WAIT_MS)
    assert "reconnecting" in w.statusBar().currentMessage() or "reconnecting" in w.view.message
    qtbot.waitUntil(lambda: "running" in statuses[statuses.index("reconnecting"):], timeout=WAIT_MS)
    qtbot.waitUntil(lambda: w.view.result is not None and w.view.result.frame.index > 15, timeout=WAIT_MS)
    timer.stop()
    assert len(opened) >= 4 and w.worker.is_alive()
    assert np.max(np.diff(ticks)) < 0.5                 # the UI thread never blocked through the outage


def test_detector_menu_swaps_to_nanodet_live_and_finds_the_crowd(make_window, shared_data, qtbot, built):
    """The street video through BlazePose shows one person or two; Detector > NanoDet, mid-stream, shows the crowd."""
    from livepose.detect import BlazePoseDetector
    from livepose.detect_coco import NanoDetDetector

    pipeline = built[0]
    pipeline.set_detector("blazepose")
    w = make_window(SourceConfig(mode="every", loop=True))
    assert w.detector_actions["blazepose"].isChecked()
    assert w.open_source(str(shared_data / "videos/openpose_video.avi"))
    wait_for_people(qtbot, w)
    assert isinstance(pipeline.detector, BlazePoseDetector) and len(w.view.result.track_ids) <= 2
    w.detector_actions["nanodet"].trigger()
    wait_for_people(qtbot, w, lambda r: len(r.track_ids) >= 5)
    assert isinstance(pipeline.detector, NanoDetDetector) and w.worker.is_alive()
    assert w.detector_actions["nanodet"].isChecked() and not w.detector_actions["blazepose"].isChecked()
    assert w.settings.detector == "nanodet"
    w.set_detector("blazepose")                     # and back, so the session's shared pipeline is as it was
    qtbot.waitUntil(lambda: isinstance(pipeline.detector, BlazePoseDetector), timeout=WAIT_MS)


def test_settings_survive_a_round_trip_and_a_broken_file_gives_defaults(tmp_path, caplog):
    path = tmp_path / "app.json"
    save_settings(AppSettings(last_source="clip.mp4", filter="oneeuro", oneeuro_beta=0.3, joint=4), path)
    loaded = load_settings(path)
    assert (loaded.last_source, loaded.filter, loaded.oneeuro_beta, loaded.joint) == ("clip.mp4", "oneeuro", 0.3, 4)
    path.write_text("{not json")
    assert load_settings(path) == AppSettings()
    assert "unreadable" in caplog.text
    save_settings(AppSettings(), tmp_path)                 # a folder (or a device) is never replaced
    assert tmp_path.is_dir() and "not a regular file" in caplog.text
    path.write_text(json.dumps({"process_noise": "loud", "measurement_noise": 4}))
    loaded = load_settings(path)
    assert loaded.process_noise == AppSettings().process_noise and loaded.measurement_noise == 4.0


def test_command_line_wins_over_settings(tmp_path):
    parser = argparse.ArgumentParser()
    app_main.add_arguments(parser)
    settings = AppSettings(model="old.npz", detector="nanodet", filter="oneeuro", process_noise=5.0)
    args = app_main.merge_settings(parser.parse_args(["clip.mp4", "--measurement-noise", "9"]), settings)
    assert (args.model, args.filter, args.process_noise, args.measurement_noise) == ("old.npz", "oneeuro", 5.0, 9.0)
    assert args.detector == "nanodet"
    assert app_main.merge_settings(parser.parse_args(["--detector", "blazepose"]), settings).detector == "blazepose"
    args = app_main.merge_settings(parser.parse_args(["--camera", "2", "--no-smooth", "--model", "m.npz"]), settings)
    assert app_main.initial_source(args) == "2" and args.no_smooth and settings.model == "m.npz"


def test_run_live_help():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(ROOT / "run_live.py"), "--help"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0
    for option in ("--model", "--camera", "--no-smooth", "--filter", "SOURCE".lower()):
        assert option in out.stdout
