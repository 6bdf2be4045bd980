"""The seam between the pipeline thread and the UI thread.

``LivePipeline`` lets the UI change smoothing or ask for a reset while the worker runs: requests are stored
under a lock and applied by the worker between two frames, so the Pipeline itself stays single-threaded.
``ResultBridge`` hands results to the UI through a queued Qt signal with "latest wins" semantics: the worker
never waits for the UI, and a slow UI skips frames instead of building a backlog.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from PyQt5.QtCore import QObject, pyqtSignal

from livepose.app.jitter_panel import PoseSample
from livepose.config import AppConfig, SmoothConfig
from livepose.quiet import native_chatter_filtered
from livepose.track import Tracker


class LivePipeline:
    """Wraps a Pipeline for PipelineWorker; set_smoothing/request_reset are safe from any thread."""

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self._lock = threading.Lock()
        self._pending_cfg: SmoothConfig | None = None
        self._pending_reset = False
        self._pending_detector: str | None = None
        self._last_index: int | None = None      # frame index of the last frame processed (worker thread)

    @property
    def smooth_cfg(self) -> SmoothConfig:
        """The config in effect, or the one about to be (what the UI last asked for)."""
        with self._lock:
            return self._pending_cfg or self.pipeline.bank.cfg

    def set_smoothing(self, cfg: SmoothConfig) -> None:
        with self._lock:
            self._pending_cfg = cfg

    def set_detector(self, name: str) -> None:
        """Swap the person detector (one of ``livepose.detect.DETECTORS``) before the next frame; tracks carry on."""
        with self._lock:
            self._pending_detector = name

    def request_reset(self) -> None:
        """Forget tracks before the next frame (a seek, a new source): a new pass, numbered from 0."""
        with self._lock:
            self._pending_reset = True

    def apply_pending(self) -> None:
        """Apply the UI's requests; the worker calls this between frames (or the UI while no worker runs)."""
        with self._lock:
            cfg, reset, detector = self._pending_cfg, self._pending_reset, self._pending_detector
            self._pending_cfg, self._pending_reset, self._pending_detector = None, False, None
        if reset:
            self._number_afresh()
        if cfg is not None:
            self.pipeline.set_smoothing(cfg)
        if detector is not None:
            with native_chatter_filtered():
                self.pipeline.set_detector(detector)

    def process(self, frame, capture_wait_ms: float = 0.0):
        self.apply_pending()   # (the pipeline itself resets when time goes back: a loop or a backward seek)
        if self._last_index is not None and frame.index < self._last_index:
            self._number_afresh()
        self._last_index = frame.index
        return self.pipeline.process(frame, capture_wait_ms)

    def _number_afresh(self) -> None:
        """A new source, a seek or a loop starts a new pass: its people are numbered from 0 again, as on the first
        pass. Pipeline.reset keeps the tracker counting so that no id of one stream is ever reused; for the app each
        pass is a stream, so the tracks, the filters (keyed by id) and the numbering all start afresh."""

        self.pipeline.reset()
        self.pipeline.tracker = Tracker(self.pipeline.tracker.cfg)
        self._last_index = None


class RateMeter:
    """Events per second over the last ``window`` events."""

    def __init__(self, window: int) -> None:
        self._times: deque[float] = deque(maxlen=max(2, window))

    def tick(self) -> None:
        self._times.append(time.monotonic())

    def reset(self) -> None:
        self._times.clear()

    @property
    def rate(self) -> float:
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


class ResultBridge(QObject):
    """Worker-thread callbacks in, UI-thread signals out."""

    result_ready = pyqtSignal()               # take() the latest result
    status_changed = pyqtSignal(str, str)     # SourceStatus value, detail
    failed = pyqtSignal(str)                  # the stream stopped
    notice = pyqtSignal(str)                  # something the user should know; the stream goes on

    def __init__(self, cfg: AppConfig = AppConfig(), recorder=None) -> None:
        super().__init__()
        self.recorder = recorder
        self.pipeline_fps = RateMeter(cfg.fps_window)
        self.skipped = 0                      # results the UI never showed (a newer one replaced them)
        self._lock = threading.Lock()
        self._latest = None
        self._samples: deque[PoseSample] = deque(maxlen=int(cfg.history_s * 120))

    # --- worker thread ---

    def push(self, result) -> None:
        if self.recorder is not None:
            self.recorder.write(result)
        self.pipeline_fps.tick()
        with self._lock:
            notify = self._latest is None
            if not notify:
                self.skipped += 1
            self._latest = result
            self._samples.append(PoseSample.of(result))
        if notify:
            self.result_ready.emit()

    def report_error(self, exc: Exception) -> None:
        self.failed.emit(str(exc))

    def report_status(self, status, detail: str) -> None:
        """sources' on_status callback (capture thread, worker thread or UI thread)."""
        self.status_changed.emit(status.value, detail)

    # --- UI thread ---

    def take(self) -> tuple[object | None, list[PoseSample]]:
        """The newest result (None if already taken) and every pose sample since the last call."""
        with self._lock:
            result, self._latest = self._latest, None
            samples = list(self._samples)
            self._samples.clear()
        return result, samples

    def clear(self) -> None:
        with self._lock:
            self._latest = None
            self._samples.clear()
        self.skipped = 0
        self.pipeline_fps.reset()
