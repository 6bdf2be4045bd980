"""Frame sources on real videos and frames: every-frame reading, realtime dropping, controls, broken inputs,
and a simulated camera that fails and comes back."""

from __future__ import annotations

import argparse
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from livepose.config import SourceConfig
from livepose.sources import (CameraUnavailable, CorruptVideo, EmptySource, SourceNotFound, SourceStalled,
                              SourceStatus, LiveSource, list_cameras, open_source,
                              stream_factory, to_rgb8)

EVERY = SourceConfig(mode="every")
JHMDB = "sequences_gt/jhmdb_goal_keeping_tips_catch_fr_med_2/frames"


def decode_all(path: Path) -> list[np.ndarray]:
    """Reference decode with plain OpenCV, in RGB."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


@pytest.mark.parametrize("name", ["videos/mmpose_demo_street.mp4", "videos/posetrack18_000001_mpiinew_test.mp4"])
def test_video_every_frame_matches_opencv(shared_data, name):
    path = shared_data / name
    reference = decode_all(path)
    with open_source(path, EVERY) as source:
        frames = list(source)
        assert source.status is SourceStatus.ENDED
        stats = source.stats
    assert len(frames) == len(reference) == source.frame_count
    assert [f.index for f in frames] == list(range(len(reference)))
    for frame, expected in zip(frames, reference):
        assert frame.image.dtype == np.uint8 and frame.image.flags.c_contiguous
        np.testing.assert_array_equal(frame.image, expected)
    times = [f.source_time for f in frames]
    np.testing.assert_allclose(times, np.arange(len(frames)) / source.native_fps, atol=1e-3)
    assert stats.frames_read == len(frames) and stats.frames_dropped == 0 and not stats.truncated


def test_image_folder_natural_order_junk_unreadable_and_depths(shared_data, tmp_path, caplog):
    originals = sorted((shared_data / JHMDB).glob("*.png"))[:11]
    for i, src in enumerate(originals, start=1):   # frame1 .. frame11: natural order puts frame10 after frame9
        shutil.copy(src, tmp_path / f"frame{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    data = originals[4].read_bytes()
    (tmp_path / "frame5.png").write_bytes(data[: len(data) // 2])   # a truncated copy: unreadable
    bgr = cv2.imread(str(originals[6]))
    cv2.imwrite(str(tmp_path / "frame7.png"), bgr.astype(np.uint16) * 257)             # 16-bit
    grey = cv2.cvtColor(cv2.imread(str(originals[7])), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "frame8.png"), grey)                                     # grey
    cfg = SourceConfig(mode="every", folder_fps=30.0)
    with open_source(tmp_path, cfg) as source:
        frames = list(source)
        stats = source.stats
    assert stats.skipped_files == 2
    assert "frame5.png" in caplog.text and "notes.txt" in caplog.text
    assert [f.index for f in frames] == [0, 1, 2, 3, 5, 6, 7, 8, 9, 10]
    for frame in frames:
        assert frame.image.shape == (240, 320, 3) and frame.image.dtype == np.uint8
        assert frame.source_time == pytest.approx(frame.index / 30.0)
    expected = {i: cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for i, p in enumerate(originals)}
    for frame in frames:
        if frame.index == 7:
            np.testing.assert_array_equal(frame.image, np.repeat(grey[:, :, None], 3, axis=2))
        else:   # includes the 16-bit copy of frame 7 (index 6), which must come back exactly
            np.testing.assert_array_equal(frame.image, expected[frame.index])


def test_to_rgb8_converts_bgra_and_float(shared_data):
    bgr = cv2.imread(str(shared_data / "images/tfjs_pose.jpg"))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(to_rgb8(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)), rgb)
    np.testing.assert_array_equal(to_rgb8(bgr.astype(np.float32) / 255.0), rgb)
    np.testing.assert_array_equal(to_rgb8(rgb, bgr=False), rgb)


def test_realtime_drops_frames_for_slow_consumer_and_age_stays_bounded(shared_data):
    path = shared_data / "videos/openpose_video.avi"    # 50 fps
    consumer_period = 0.08
    lags = []
    with open_source(path, SourceConfig(mode="realtime")) as source:
        start = time.monotonic()
        first = None
        for frame in source:
            now = time.monotonic()
            first = frame.source_time if first is None else first
            lags.append((now - start) - (frame.source_time - first))   # how far the picture trails the clock
            if now - start > 1.0:
                break
            time.sleep(consumer_period)
        stats = source.stats
    assert stats.frames_dropped > 0
    assert stats.frames_read + stats.frames_dropped == frame.index + 1   # every frame passed was read or dropped
    # A slow consumer sees the present, not a backlog: the lag never grows beyond about one consumer period.
    assert max(lags) < consumer_period + 0.25, lags
    assert stats.fps < 1.5 / consumer_period


def test_realtime_does_not_run_ahead_of_native_fps(shared_data):
    with open_source(shared_data / "videos/openpose_video.avi", SourceConfig(mode="realtime")) as source:
        start = time.monotonic()
        frames = [source.read() for _ in range(20)]
        elapsed = time.monotonic() - start
    assert elapsed >= 19 / source.native_fps * 0.95
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices))


def test_pause_step_seek_loop(shared_data):
    path = shared_data / "videos/posetrack18_000001_mpiinew_test.mp4"   # 5 frames, 30 fps
    reference = decode_all(path)
    with open_source(path, SourceConfig(mode="every", loop=True)) as source:
        assert source.read().index == 0
        source.pause()
        assert source.status is SourceStatus.PAUSED
        with pytest.raises(SourceStalled, match="paused"):
            source.read(timeout=0.05)
        source.step()
        assert source.read().index == 1
        with pytest.raises(SourceStalled):
            source.read(timeout=0.05)
        source.seek(3)                      # while paused: delivers that one frame
        frame = source.read()
        assert frame.index == 3
        np.testing.assert_array_equal(frame.image, reference[3])
        source.resume()
        assert [source.read().index for _ in range(6)] == [4, 0, 1, 2, 3, 4]   # loops
        source.seek(2)
        frame = source.read()
        assert frame.index == 2
        np.testing.assert_array_equal(frame.image, reference[2])
        with pytest.raises(ValueError, match="outside"):
            source.seek(5)


def test_seek_is_frame_accurate_on_longer_video(shared_data):
    path = shared_data / "videos/openpose_video.avi"
    cap = cv2.VideoCapture(str(path))
    for _ in range(37):
        cap.grab()
    ok, expected = cap.read()
    with open_source(path, EVERY) as source:
        source.seek(37)
        frame = source.read()
    assert frame.index == 37
    np.testing.assert_array_equal(frame.image, cv2.cvtColor(expected, cv2.COLOR_BGR2RGB))
    assert frame.source_time == pytest.approx(37 / source.native_fps, abs=1e-3)


def test_pause_wakes_a_blocked_reader_on_step_from_another_thread(shared_data):
    with open_source(shared_data / JHMDB, EVERY) as source:
        source.pause()
        threading.Timer(0.1, source.step).start()
        start = time.monotonic()
        frame = source.read(timeout=2.0)
        assert frame.index == 0 and time.monotonic() - start < 1.0


def test_truncated_video_ends_cleanly_with_warning(shared_data, tmp_path, caplog):
    original = shared_data / "videos/openpose_video.avi"   # an mp4 container with its index at the front
    data = original.read_bytes()
    cut = tmp_path / "half.avi"
    cut.write_bytes(data[: len(data) // 2])
    with open_source(cut, EVERY) as source:
        count = sum(1 for _ in source)
        stats = source.stats
        assert source.status is SourceStatus.ENDED
    assert 0 < count < source.frame_count
    assert stats.truncated and "truncated" in caplog.text


def test_truncated_mp4_without_index_is_a_clear_error(shared_data, tmp_path):
    data = (shared_data / "videos/mmpose_body3d_demo.mp4").read_bytes()   # moov atom at the end
    cut = tmp_path / "half.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptVideo, match="not a video"):
        open_source(cut)


def test_broken_inputs_raise_specific_errors(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is a text file, not a video\n" * 20)
    with pytest.raises(CorruptVideo, match="not a video"):
        open_source(text)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(CorruptVideo, match="empty"):
        open_source(empty)
    with pytest.raises(SourceNotFound, match="does not exist"):
        open_source(tmp_path / "missing.mp4")
    folder = tmp_path / "nothing"
    folder.mkdir()
    (folder / "readme.txt").write_text("no images here")
    with pytest.raises(EmptySource, match="no images"):
        open_source(folder)
    with pytest.raises(ValueError, match="mode"):
        SourceConfig(mode="fast")


def test_missing_camera_fails_fast():
    start = time.monotonic()
    with pytest.raises(CameraUnavailable, match="camera 99"):
        open_source(99)
    with pytest.raises(CameraUnavailable):
        open_source("/dev/video99")
    assert time.monotonic() - start < 2.0
    cameras = list_cameras(4)
    assert isinstance(cameras, list) and all(isinstance(i, int) for i in cameras)


def test_time_going_backwards_is_corrected_and_jumps_flagged(shared_data):
    path = shared_data / "videos/posetrack18_000001_mpiinew_test.mp4"

    class WarpedClock:
        """The real capture, with presentation times that go back at frame 2 and jump at frame 4."""

        def __init__(self, cap):
            self.cap, self.reads = cap, 0
            self.times_ms = [0.0, 33.3, 10.0, 100.0, 5000.0]

        def read(self):
            self.reads += 1
            return self.cap.read()

        def get(self, prop):
            return self.times_ms[self.reads] if prop == cv2.CAP_PROP_POS_MSEC else self.cap.get(prop)

        def __getattr__(self, name):
            return getattr(self.cap, name)

    with open_source(path, EVERY) as source:
        source._cap = WarpedClock(source._cap)   # the first frame was decoded at open; the rest go through the wrap
        frames = list(source)
        stats = source.stats
    times = [f.source_time for f in frames]
    assert all(b > a for a, b in zip(times, times[1:])), times
    assert times[4] == pytest.approx(5.0)       # a jump forward is kept, but flagged
    assert stats.time_anomalies == 2


# --- live sources with a simulated camera ---

class FakeCamera:
    """Real frames at a fixed period; after `fail_after` reads it fails (returns no frame, or hangs)."""

    def __init__(self, frames, period=0.01, fail_after=None, hang_s=0.0):
        self.frames, self.period, self.fail_after, self.hang_s = frames, period, fail_after, hang_s
        self.reads = 0
        self.released = False

    def read(self):
        time.sleep(self.period)
        if self.fail_after is not None and self.reads >= self.fail_after:
            if self.hang_s:
                time.sleep(self.hang_s)
                self.fail_after = None     # the driver recovers after hanging once
            else:
                return False, None
        frame = self.frames[self.reads % len(self.frames)].copy()
        self.reads += 1
        return True, frame

    def isOpened(self):
        return True

    def release(self):
        self.released = True

    def get(self, prop):
        return 1.0 / self.period if prop == cv2.CAP_PROP_FPS else 0.0


class ClosedCapture(FakeCamera):
    def __init__(self):
        super().__init__([])

    def isOpened(self):
        return False


class FlakyCameraFactory:
    """First camera dies after `fail_after` frames, the next `down` openings fail, then a healthy camera."""

    def __init__(self, frames, fail_after, down):
        self.frames, self.fail_after, self.down = frames, fail_after, down
        self.opened: list[FakeCamera] = []

    def __call__(self):
        attempt = len(self.opened)
        if attempt == 0:
            cam = FakeCamera(self.frames, fail_after=self.fail_after)
        elif attempt <= self.down:
            cam = ClosedCapture()
        else:
            cam = FakeCamera(self.frames)
        self.opened.append(cam)
        return cam


@pytest.fixture(scope="module")
def real_frames(shared_data):
    return [cv2.imread(str(p)) for p in sorted((shared_data / JHMDB).glob("*.png"))[:8]]


LIVE = SourceConfig(read_timeout_s=0.3, stall_timeout_s=0.2, max_read_failures=2, reconnect_initial_s=0.05,
                    reconnect_max_s=0.1)


def test_camera_failing_mid_stream_reconnects_and_resumes(real_frames):
    events = []
    factory = FlakyCameraFactory(real_frames, fail_after=10, down=2)
    with open_source(0, LIVE, on_status=lambda s, d: events.append(s), capture_factory=factory) as source:
        got, stalls = [], 0
        deadline = time.monotonic() + 5.0
        while len(got) < 20 and time.monotonic() < deadline:
            try:
                got.append(source.read(timeout=0.1))
            except SourceStalled:
                stalls += 1
        stats = source.stats
    assert len(got) == 20
    assert stalls >= 1                      # the consumer was told instead of being blocked
    assert events[:3] == [SourceStatus.STALLED, SourceStatus.RECONNECTING, SourceStatus.RECONNECTING]
    assert SourceStatus.RUNNING in events[3:]
    assert stats.reconnects == 1 and len(factory.opened) == 4
    assert factory.opened[0].released
    indices = [f.index for f in got]
    assert indices == sorted(indices) and indices[-1] > 10    # frames after the reconnect
    for frame in got:
        assert frame.image.shape == (240, 320, 3)


def test_camera_hanging_does_not_block_the_consumer(real_frames):
    cam = FakeCamera(real_frames, fail_after=5, hang_s=0.8)
    with open_source(0, LIVE, capture_factory=lambda: cam) as source:
        statuses = set()
        delivered = 0
        start = time.monotonic()
        while delivered < 10 and time.monotonic() - start < 4.0:
            t0 = time.monotonic()
            try:
                source.read(timeout=0.1)
                delivered += 1
            except SourceStalled:
                assert time.monotonic() - t0 < 0.3
            statuses.add(source.status)
        assert delivered == 10
        assert SourceStatus.STALLED in statuses and source.status is SourceStatus.RUNNING


def test_camera_that_never_returns_ends_as_failed(real_frames):
    calls = []

    def factory():
        calls.append(1)
        return FakeCamera(real_frames, fail_after=3) if len(calls) == 1 else ClosedCapture()

    cfg = SourceConfig(read_timeout_s=0.2, max_read_failures=1, reconnect_initial_s=0.02, reconnect_attempts=3)
    with open_source(0, cfg, capture_factory=factory) as source:
        start = time.monotonic()
        frames = list(source)            # iteration waits through the stall, then ends when reconnecting gives up
        assert time.monotonic() - start < 3.0
        assert source.status is SourceStatus.FAILED and source.read() is None
    assert 1 <= len(frames) <= 3 and len(calls) == 4


def test_live_latest_frame_wins_and_close_joins_quickly(real_frames):
    cam = FakeCamera(real_frames, period=0.005)
    source = open_source(0, LIVE, capture_factory=lambda: cam)
    frames, ages = [], []
    for _ in range(8):
        time.sleep(0.04)
        frames.append(source.read())
        ages.append(time.monotonic() - frames[-1].timestamp)
    start = time.monotonic()
    source.close()
    assert time.monotonic() - start < 1.0
    assert not source._thread.is_alive() and cam.released
    assert source.status is SourceStatus.CLOSED and source.read() is None
    stats = source.stats
    gaps = sum(b.index - a.index - 1 for a, b in zip(frames, frames[1:]))
    assert gaps > 0 and stats.frames_dropped >= gaps
    assert max(ages) < 0.1


def test_unopened_capture_is_camera_unavailable():
    with pytest.raises(CameraUnavailable, match="did not open"):
        open_source(3, capture_factory=ClosedCapture)


def test_livepose_cameras_lists_what_opens_and_says_when_nothing_does(monkeypatch, capsys):
    """The real probe first (no camera on CI machines: exit 1 and a message), then a driver with camera 1 only."""
    from livepose import sources
    from livepose.commands import cameras
    from livepose.cli import main

    assert main(["cameras", "--max-index", "0"]) == 2
    assert "--max-index must be at least 1, got 0" in capsys.readouterr().err
    real = sources.probe_cameras(3)
    if not real:
        assert main(["cameras", "--max-index", "3"]) == 1
        assert "no camera opens at indices 0-2" in capsys.readouterr().err

    class OnlyCameraOne(FakeCamera):
        opened: list[int] = []

        def __init__(self, index, backend):
            super().__init__([], period=1 / 30)
            self.index = index
            OnlyCameraOne.opened.append(index)

        def isOpened(self):
            return self.index == 1

        def get(self, prop):
            return {cv2.CAP_PROP_FRAME_WIDTH: 640.0, cv2.CAP_PROP_FRAME_HEIGHT: 480.0}.get(prop, super().get(prop))

    monkeypatch.setattr(sources.cv2, "VideoCapture", OnlyCameraOne)
    assert sources.probe_cameras(4) == [sources.CameraInfo(1, 640, 480, pytest.approx(30.0))]
    assert sources.list_cameras(4) == [1] and OnlyCameraOne.opened[:4] == [0, 1, 2, 3]
    assert cameras.main(argparse.Namespace(max_index=4, backend="any")) == 0
    out = capsys.readouterr().out
    assert "640x480" in out and "30.0" in out and out.split("\n")[2].split()[0] == "1"


def test_stream_path_reads_a_real_video_through_ffmpeg_then_gives_up_at_its_end(shared_data):
    """No network here: a local file stands in for the URL, exercising the stream capture (FFmpeg + timeouts)."""
    path = shared_data / "videos/posetrack18_000001_mpiinew_test.mp4"
    cfg = SourceConfig(read_timeout_s=0.5, max_read_failures=1, reconnect_attempts=0)
    source = LiveSource("stream", stream_factory(str(path), cfg), cfg)
    with source:
        frames = list(source)
        assert source.status is SourceStatus.FAILED
        stats = source.stats
    assert 1 <= len(frames) <= 5
    assert stats.frames_read + stats.frames_dropped == 5      # every decoded frame was delivered or dropped
    assert [f.index for f in frames] == sorted({f.index for f in frames})
    assert frames[0].image.shape == (720, 1280, 3)
