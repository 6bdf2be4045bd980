"""Frame sources: one iterator interface for cameras, streams, video files and image folders.

Live sources (camera, stream) capture on their own thread into a one-slot buffer where the newest frame
wins, so the pipeline always works on the present instead of a growing backlog. Files are read on the
consumer's thread, either in "realtime" mode (replayed against a clock at native fps, skipping the frames
a slow consumer would have missed, as a camera would) or "every" mode (all frames, as fast as they are
read: for evaluation).

Every image leaves this module as contiguous RGB uint8, whatever the source delivered (grey, BGRA,
16-bit), so no later stage has to guess a colour order or a depth.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

import cv2
import numpy as np

from livepose.config import SourceConfig

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2"})
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
BACKENDS: dict[str, int] = {
    "any": cv2.CAP_ANY,
    "v4l2": cv2.CAP_V4L2,
    "dshow": cv2.CAP_DSHOW,
    "msmf": cv2.CAP_MSMF,
    "avfoundation": cv2.CAP_AVFOUNDATION,
    "gstreamer": cv2.CAP_GSTREAMER,
    "ffmpeg": cv2.CAP_FFMPEG,
}
_OPENCV_LOG_SILENT = 0


class SourceError(Exception):
    """Base of every error a frame source raises."""


class SourceNotFound(SourceError, FileNotFoundError):
    """The file or folder does not exist."""


class SourceUnavailable(SourceError):
    """A live source (camera, stream) could not be opened."""


class CameraUnavailable(SourceUnavailable):
    """The camera index or device does not exist, is busy, or delivers no frame."""


class CorruptVideo(SourceError):
    """The file is empty, not a video, or holds no decodable frame."""


class EmptySource(SourceError):
    """An image folder without images."""


class SourceStalled(SourceError):
    """read() got no frame within its timeout (live source not delivering, or a paused file)."""


class SourceStatus(enum.Enum):
    RUNNING = "running"
    PAUSED = "paused"
    STALLED = "stalled"            # live: frames stopped arriving
    RECONNECTING = "reconnecting"  # live: reopening the capture with back-off
    ENDED = "ended"                # file: no more frames
    FAILED = "failed"              # live: gave up reconnecting
    CLOSED = "closed"


StatusCallback = Callable[[SourceStatus, str], None]


@dataclass(frozen=True, eq=False)
class Frame:
    image: np.ndarray       # RGB uint8, HxWx3, contiguous
    index: int              # position in the source; gaps mean dropped or skipped frames
    timestamp: float        # time.monotonic() when captured (live) or decoded (files)
    source_time: float      # seconds in the media: video PTS, index/fps for folders, capture time for live


@dataclass(frozen=True)
class SourceStats:
    frames_read: int = 0        # delivered to the consumer
    frames_dropped: int = 0     # overwritten before the consumer took them (live) or skipped by realtime replay
    fps: float = 0.0            # delivered frames per second over the last cfg.fps_window frames
    skipped_files: int = 0      # image folders: non-image or unreadable files
    time_anomalies: int = 0     # files: source_time that went backwards (corrected) or jumped (flagged)
    reconnects: int = 0         # live: successful reopenings
    truncated: bool = False     # videos: ended before the frame count in the header


class Capture(Protocol):
    """What a live source needs from a capture; cv2.VideoCapture satisfies it, and so can a test double."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def isOpened(self) -> bool: ...
    def release(self) -> None: ...
    def get(self, prop_id: int) -> float: ...


CaptureFactory = Callable[[], Capture]


def to_rgb8(image: np.ndarray, bgr: bool = True) -> np.ndarray:
    """Any OpenCV image (grey, BGR, BGRA; uint8, uint16 or float in [0, 1]) -> contiguous RGB uint8."""
    if image.dtype == np.uint16:
        image = cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)
    elif np.issubdtype(image.dtype, np.floating):
        image = cv2.convertScaleAbs(np.clip(image, 0.0, 1.0), alpha=255.0)
    elif image.dtype != np.uint8:
        raise ValueError(f"unsupported image dtype {image.dtype}: expected uint8, uint16 or float")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if bgr else np.ascontiguousarray(image)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if bgr else cv2.COLOR_RGBA2RGB)
    raise ValueError(f"unsupported image shape {image.shape}: expected 1, 3 or 4 channels")


def natural_key(path: Path) -> list:
    """Sort key where frame2 < frame10 (digit runs compare as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Probing absent cameras makes OpenCV log a warning per index; keep that out of the user's console."""
    previous = cv2.getLogLevel()
    cv2.setLogLevel(_OPENCV_LOG_SILENT)
    try:
        yield
    finally:
        cv2.setLogLevel(previous)


def _backend(cfg: SourceConfig) -> int:
    if cfg.backend not in BACKENDS:
        raise ValueError(f"unknown capture backend {cfg.backend!r}: choose one of {sorted(BACKENDS)}")
    return BACKENDS[cfg.backend]


@dataclass(frozen=True)
class CameraInfo:
    """A camera that opens, and the mode the driver opens it in (before any resolution or fps is asked for)."""

    index: int
    width: int
    height: int
    fps: float                # 0 when the driver does not say


def probe_cameras(max_index: int = 10, cfg: SourceConfig = SourceConfig()) -> list[CameraInfo]:
    """The cameras below index ``max_index`` that open with ``cfg.backend``; [] when there are none."""
    found = []
    with _quiet_opencv():
        for index in range(max_index):
            cap = cv2.VideoCapture(index, _backend(cfg))
            try:
                if cap.isOpened():
                    found.append(CameraInfo(index, int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                                            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                                            float(cap.get(cv2.CAP_PROP_FPS) or 0.0)))
            finally:
                cap.release()
    return found


def list_cameras(max_index: int = 10, cfg: SourceConfig = SourceConfig()) -> list[int]:
    """Camera indices below max_index that open; [] when there are none."""
    return [camera.index for camera in probe_cameras(max_index, cfg)]


class FrameSource:
    """Common interface: read() -> Frame | None (None: the source has ended), iteration, stats, status."""

    native_fps: float | None = None   # the source's own frame rate, where it has one
    frame_count: int | None = None    # files only

    def __init__(self, name: str, cfg: SourceConfig, on_status: StatusCallback | None = None):
        self.name = name
        self.cfg = cfg
        self._on_status = on_status
        self._cond = threading.Condition()
        self._status = SourceStatus.RUNNING
        self._status_detail = ""
        self._closed = False
        self._counts = {"frames_read": 0, "frames_dropped": 0, "skipped_files": 0, "time_anomalies": 0,
                        "reconnects": 0}
        self._truncated = False
        self._delivery_times: deque[float] = deque(maxlen=max(2, cfg.fps_window))

    def read(self, timeout: float | None = None) -> Frame | None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @property
    def status(self) -> SourceStatus:
        return self._status

    @property
    def stats(self) -> SourceStats:
        with self._cond:
            times = self._delivery_times
            span = times[-1] - times[0] if len(times) > 1 else 0.0
            fps = (len(times) - 1) / span if span > 0 else 0.0
            return SourceStats(fps=fps, truncated=self._truncated, **self._counts)

    def __iter__(self) -> Iterator[Frame]:
        """Frames until the source ends; waits through stalls while a live source is still reconnecting."""
        while True:
            try:
                frame = self.read()
            except SourceStalled:
                if self._status in (SourceStatus.FAILED, SourceStatus.CLOSED):
                    return
                continue
            if frame is None:
                return
            yield frame

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _set_status(self, status: SourceStatus, detail: str = "") -> None:
        """Change status and tell the callback; never called with the lock held (the callback may read stats)."""
        with self._cond:
            if (status, detail) == (self._status, self._status_detail) or self._status is SourceStatus.CLOSED:
                return
            self._status, self._status_detail = status, detail
            self._cond.notify_all()
        level = logging.WARNING if status in (SourceStatus.STALLED, SourceStatus.FAILED) else logging.INFO
        log.log(level, "%s: %s%s", self.name, status.value, f" ({detail})" if detail else "")
        if self._on_status is not None:
            self._on_status(status, detail)

    def _delivered(self, frame: Frame) -> Frame:
        """Count a frame handed to the consumer (caller holds the lock)."""
        self._counts["frames_read"] += 1
        self._delivery_times.append(time.monotonic())
        return frame


class _FileSource(FrameSource):
    """Clock, pause/step/seek/loop logic shared by video files and image folders (read on the consumer's thread).

    Subclasses implement _read_next() (decode the frame at self._next, return (image, index, source_time) or
    None at the end), _skip(n) (pass over n frames cheaply, return how many there were) and _reposition(i).
    """

    def __init__(self, name: str, cfg: SourceConfig, native_fps: float, frame_count: int | None,
                 on_status: StatusCallback | None):
        super().__init__(name, cfg, on_status)
        self.native_fps = native_fps
        self.frame_count = frame_count
        self._next = 0
        self._paused = False
        self._steps = 0
        self._seek_to: int | None = None
        self._clock: tuple[float, int] | None = None     # (monotonic start, index at start) of realtime replay
        self._last_time: tuple[int, float] | None = None  # (index, source_time) of the last delivered frame

    # --- controls (any thread) ---

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def position(self) -> int:
        """Index of the next frame to read."""
        return self._next if self._seek_to is None else self._seek_to

    def pause(self) -> None:
        with self._cond:
            self._paused = True
        self._set_status(SourceStatus.PAUSED)

    def resume(self) -> None:
        with self._cond:
            self._paused, self._steps, self._clock = False, 0, None
        self._set_status(SourceStatus.RUNNING)

    def step(self, n: int = 1) -> None:
        """Pause (if playing) and let the next n reads deliver consecutive frames."""
        if not self._paused:
            self.pause()
        with self._cond:
            self._steps += n
            self._cond.notify_all()

    def reconfigure(self, cfg: SourceConfig) -> None:
        """Read on with ``cfg`` (loop, every frame or realtime); realtime replay keeps time from the next frame, so
        switching to it drops nothing that was read before."""
        with self._cond:
            self.cfg, self._clock = cfg, None
            self._cond.notify_all()

    def seek(self, index: int) -> None:
        """Continue from frame `index`; while paused, the next read delivers that one frame."""
        if index < 0 or (self.frame_count is not None and index >= self.frame_count):
            raise ValueError(f"seek({index}) outside {self.name}: frames are 0..{(self.frame_count or 0) - 1}")
        with self._cond:
            self._seek_to = index
            if self._paused:
                self._steps = 1
            self._cond.notify_all()
        if self._status is SourceStatus.ENDED:
            self._set_status(SourceStatus.PAUSED if self._paused else SourceStatus.RUNNING, f"seek to {index}")

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            self._release()
        self._set_status(SourceStatus.CLOSED)

    # --- reading (consumer thread) ---

    def read(self, timeout: float | None = None) -> Frame | None:
        deadline = time.monotonic() + (self.cfg.read_timeout_s if timeout is None else timeout)
        ended = False
        with self._cond:
            looped = False   # at most one restart per read, so a folder of unreadable images cannot spin
            while not self._closed:
                if self._seek_to is not None:
                    self._jump(self._seek_to)
                    self._seek_to = None
                stepping = self._paused
                if stepping and self._steps == 0:
                    self._wait_until(deadline, deadline, "paused: step(), seek() or resume() it")
                    continue
                if not stepping and self.cfg.mode == "realtime" and not self._keep_time(deadline):
                    continue
                got = self._read_next()
                if got is None:
                    if self.cfg.loop and self._counts["frames_read"] > 0 and not looped:
                        looped = True
                        self._jump(0)
                        continue
                    ended = True
                    break
                if stepping:
                    self._steps -= 1
                image, index, source_time = got
                self._next = index + 1
                frame = Frame(to_rgb8(image), index, time.monotonic(), self._checked_time(index, source_time))
                return self._delivered(frame)
        if ended:
            self._set_status(SourceStatus.ENDED)
        return None

    def _wait_until(self, until: float, deadline: float, why: str) -> None:
        """Wait on the condition (so pause/seek/close wake us) until `until`; past the deadline, raise."""
        now = time.monotonic()
        if now >= deadline:
            raise SourceStalled(f"{self.name}: no frame within the read timeout ({why})")
        self._cond.wait(min(until, deadline) - now)

    def _keep_time(self, deadline: float) -> bool:
        """Realtime replay: skip what the clock has passed, wait for what it has not reached. True: read now."""
        now = time.monotonic()
        if self._clock is None:
            self._clock = (now, self._next)
        start, first = self._clock
        due = first + int((now - start) * self.native_fps)
        if due < self._next:
            self._wait_until(start + (self._next - first) / self.native_fps, deadline, "waiting for the frame's time")
            return False
        if due > self._next:
            skipped = self._skip(due - self._next)
            self._next += skipped
            self._counts["frames_dropped"] += skipped
        return True

    def _jump(self, index: int) -> None:
        self._reposition(index)
        self._next = index
        self._clock = None
        self._last_time = None

    def _checked_time(self, index: int, source_time: float) -> float:
        """Keep source_time strictly increasing (backward steps are replaced) and flag jumps."""
        if self._last_time is not None:
            last_index, last_time = self._last_time
            expected = (index - last_index) / self.native_fps
            step = source_time - last_time
            if step <= 0:
                self._counts["time_anomalies"] += 1
                log.warning("%s: source time went from %.3f s to %.3f s at frame %d; using %.3f s",
                            self.name, last_time, source_time, index, last_time + expected)
                source_time = last_time + expected
            elif abs(step - expected) > self.cfg.time_jump_s:
                self._counts["time_anomalies"] += 1
                log.warning("%s: source time jumped %.3f s (expected %.3f s) at frame %d",
                            self.name, step, expected, index)
        self._last_time = (index, source_time)
        return source_time

    def _read_next(self) -> tuple[np.ndarray, int, float] | None:
        raise NotImplementedError

    def _skip(self, n: int) -> int:
        raise NotImplementedError

    def _reposition(self, index: int) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Free decoder resources (caller holds the lock)."""


class VideoFileSource(_FileSource):
    def __init__(self, path: str | Path, cfg: SourceConfig = SourceConfig(),
                 on_status: StatusCallback | None = None):
        path = Path(path)
        if not path.exists():
            raise SourceNotFound(f"video file {path} does not exist")
        if path.stat().st_size == 0:
            raise CorruptVideo(f"video file {path} is empty (0 bytes)")
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise CorruptVideo(f"{path} is not a video OpenCV can open (no container/stream found; "
                               "a truncated mp4 loses its index when the moov atom was at the end)")
        ok, first = cap.read()
        if not ok:
            cap.release()
            raise CorruptVideo(f"{path} opened but holds no decodable frame")
        fps = cap.get(cv2.CAP_PROP_FPS)
        if not fps > 0:
            log.warning("%s reports no frame rate; assuming %.1f fps", path, cfg.folder_fps)
            fps = cfg.folder_fps
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        super().__init__(str(path), cfg, fps, count if count > 0 else None, on_status)
        self._cap = cap
        self._pending: tuple[np.ndarray, float] | None = (first, cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)

    def _read_next(self) -> tuple[np.ndarray, int, float] | None:
        if self._pending is not None:
            (image, source_time), self._pending = self._pending, None
            return image, self._next, source_time
        ok, image = self._cap.read()
        if not ok:
            if self.frame_count is not None and self._next < self.frame_count and not self._truncated:
                self._truncated = True
                log.warning("%s: video ended at frame %d of the %d its header declares (truncated or corrupt); "
                            "stopping cleanly", self.name, self._next, self.frame_count)
            return None
        return image, self._next, self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0

    def _skip(self, n: int) -> int:
        done = 0
        if self._pending is not None and n > 0:
            self._pending, done = None, 1
        while done < n and self._cap.grab():
            done += 1
        return done

    def _reposition(self, index: int) -> None:
        self._pending = None
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)

    def _release(self) -> None:
        self._cap.release()


class ImageFolderSource(_FileSource):
    def __init__(self, path: str | Path, cfg: SourceConfig = SourceConfig(),
                 on_status: StatusCallback | None = None):
        path = Path(path)
        if not path.is_dir():
            raise SourceNotFound(f"image folder {path} does not exist")
        files = sorted((p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")), key=natural_key)
        self._files = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
        if not self._files:
            raise EmptySource(f"image folder {path} holds no images (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
        super().__init__(str(path), cfg, cfg.folder_fps, len(self._files), on_status)
        others = [p.name for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS]
        if others:
            self._counts["skipped_files"] += len(others)
            log.warning("%s: skipping %d non-image files (%s)", path, len(others), ", ".join(others[:5]))

    @property
    def files(self) -> list[Path]:
        """The images in play order: a frame's index is its position here."""
        return list(self._files)

    def _read_next(self) -> tuple[np.ndarray, int, float] | None:
        index = self._next
        while index < len(self._files):
            image = cv2.imread(str(self._files[index]), cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
            if image is not None:
                return image, index, index / self.native_fps
            self._counts["skipped_files"] += 1
            log.warning("%s: skipping unreadable image %s", self.name, self._files[index].name)
            index += 1
        return None

    def _skip(self, n: int) -> int:
        return max(0, min(n, len(self._files) - self._next))

    def _reposition(self, index: int) -> None:
        """Random access is free for a folder."""


class LiveSource(FrameSource):
    """A camera or stream read on a capture thread into a one-slot buffer (the newest frame wins).

    When frames stop (failed reads), the thread reports STALLED, reopens the capture through the factory
    with exponential back-off (RECONNECTING), and reports RUNNING when frames flow again. The consumer is
    never blocked longer than its read timeout: read() raises SourceStalled instead.
    """

    def __init__(self, name: str, factory: CaptureFactory, cfg: SourceConfig = SourceConfig(),
                 on_status: StatusCallback | None = None, unavailable: type[SourceUnavailable] = SourceUnavailable):
        super().__init__(name, cfg, on_status)
        self._factory = factory
        cap = self._try_open()
        if cap is None:
            raise unavailable(f"{name} did not open: no such device or URL, busy in another application, "
                              f"or no permission (backend {cfg.backend!r})")
        ok, first = cap.read()
        if not ok:
            cap.release()
            raise unavailable(f"{name} opened but delivered no frame (busy in another application?)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.native_fps = fps if fps > 0 else None
        self._cap: Capture | None = cap
        self._slot: Frame | None = None
        self._captured = 0
        self._last_frame_at = time.monotonic()
        self._publish(first, self._last_frame_at)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"capture:{name}", daemon=True)
        self._thread.start()

    def read(self, timeout: float | None = None) -> Frame | None:
        timeout = self.cfg.read_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._slot is None and self._status not in (SourceStatus.FAILED, SourceStatus.CLOSED):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            frame, self._slot = self._slot, None
            if frame is not None:
                return self._delivered(frame)
            if self._status in (SourceStatus.FAILED, SourceStatus.CLOSED):
                return None
            silent = time.monotonic() - self._last_frame_at
        if silent > self.cfg.stall_timeout_s and self._status is SourceStatus.RUNNING:
            self._set_status(SourceStatus.STALLED, f"no frame for {silent:.1f} s")
        raise SourceStalled(f"{self.name}: no frame within {timeout:.2f} s "
                            f"(status {self._status.value}, last frame {silent:.1f} s ago)")

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
        self._set_status(SourceStatus.CLOSED)
        self._stop.set()
        self._thread.join(self.cfg.close_timeout_s)
        if self._thread.is_alive():
            log.warning("%s: capture thread did not stop within %.1f s (blocked in the driver); it will release "
                        "the device when its read returns", self.name, self.cfg.close_timeout_s)

    def _try_open(self) -> Capture | None:
        with _quiet_opencv():
            cap = self._factory()
        if cap is not None and cap.isOpened():
            return cap
        if cap is not None:
            cap.release()
        return None

    def _publish(self, image: np.ndarray, captured_at: float) -> None:
        frame = Frame(to_rgb8(image), self._captured, captured_at, captured_at)
        with self._cond:
            if self._slot is not None:
                self._counts["frames_dropped"] += 1
            self._slot = frame
            self._captured += 1
            self._last_frame_at = captured_at
            self._cond.notify_all()
        if self._status is not SourceStatus.RUNNING:
            self._set_status(SourceStatus.RUNNING, "frames resumed")

    def _run(self) -> None:
        failures = 0
        try:
            while not self._stop.is_set():
                ok, image = self._cap.read()
                if self._stop.is_set():
                    break
                if ok and image is not None:
                    failures = 0
                    self._publish(image, time.monotonic())
                    continue
                failures += 1
                if failures < self.cfg.max_read_failures:
                    continue
                self._set_status(SourceStatus.STALLED, f"{failures} reads failed in a row")
                if not self._reconnect():
                    break
                failures = 0
        finally:
            if self._cap is not None:
                self._cap.release()

    def _reconnect(self) -> bool:
        """Reopen with exponential back-off; False when closed or out of attempts."""
        self._cap.release()
        self._cap = None
        delay, attempt = self.cfg.reconnect_initial_s, 0
        while not self._stop.is_set():
            if self.cfg.reconnect_attempts is not None and attempt >= self.cfg.reconnect_attempts:
                self._set_status(SourceStatus.FAILED, f"gave up after {attempt} reconnect attempts")
                return False
            attempt += 1
            self._set_status(SourceStatus.RECONNECTING, f"attempt {attempt} in {delay:.1f} s")
            if self._stop.wait(delay):
                return False
            self._cap = self._try_open()
            if self._cap is not None:
                with self._cond:
                    self._counts["reconnects"] += 1
                return True
            delay = min(2.0 * delay, self.cfg.reconnect_max_s)
        return False


def camera_factory(device: int | str, cfg: SourceConfig = SourceConfig()) -> CaptureFactory:
    """Opens a camera by index or device path with the configured backend, resolution, fps and fourcc."""
    backend = _backend(cfg)
    if isinstance(device, str) and backend == cv2.CAP_ANY:
        backend = cv2.CAP_V4L2   # device paths are a V4L2 notion

    def open_camera() -> cv2.VideoCapture:
        cap = cv2.VideoCapture(device, backend)
        if cap.isOpened():
            if cfg.camera_fourcc:
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*cfg.camera_fourcc))
            if cfg.resolution:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.resolution[0])
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.resolution[1])
            if cfg.fps:
                cap.set(cv2.CAP_PROP_FPS, cfg.fps)
        return cap

    return open_camera


def stream_factory(url: str, cfg: SourceConfig = SourceConfig()) -> CaptureFactory:
    """Opens an rtsp/http/... URL through FFmpeg with open and read timeouts, so a dead URL fails instead of hanging."""
    backend = cv2.CAP_FFMPEG if cfg.backend == "any" else _backend(cfg)
    timeout_ms = int(cfg.stream_open_timeout_s * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
    return lambda: cv2.VideoCapture(url, backend, params)


def open_source(spec: str | int | Path, cfg: SourceConfig = SourceConfig(),
                on_status: StatusCallback | None = None,
                capture_factory: CaptureFactory | None = None) -> FrameSource:
    """Pick the source for `spec`: camera index or /dev/videoN, rtsp/http URL, image folder, or video file.

    capture_factory replaces how a live source opens its capture (tests simulate failing cameras with it).
    """
    text = str(spec).strip()
    is_camera = isinstance(spec, int) or text.isdigit() or text.startswith("/dev/video")
    if capture_factory is not None:
        return LiveSource(f"camera {text}" if is_camera else text, capture_factory, cfg, on_status,
                          CameraUnavailable if is_camera else SourceUnavailable)
    if is_camera:
        device: int | str = int(text) if text.isdigit() else text
        return LiveSource(f"camera {device}", camera_factory(device, cfg), cfg, on_status, CameraUnavailable)
    if text.lower().startswith(STREAM_SCHEMES):
        return LiveSource(text, stream_factory(text, cfg), cfg, on_status)
    path = Path(text).expanduser()
    if path.is_dir():
        return ImageFolderSource(path, cfg, on_status)
    return VideoFileSource(path, cfg, on_status)
