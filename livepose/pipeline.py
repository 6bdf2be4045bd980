"""The live core: detector-then-SimpleBaseline on each frame, tracked identities, per-joint smoothing.

Between detector runs each person's crop comes from their previous keypoints (as MediaPipe does), so most
frames skip the detector; it runs on the first frame, when a track is lost or unsure, and every
``detect_every`` frames to catch newcomers. That periodic search runs on its own thread
(:class:`BackgroundDetector`), so its frames do not wait for it; its people join a frame or two later.
``PipelineWorker`` runs the pipeline on a thread so a UI stays free.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from livepose.config import PipelineConfig, SmoothConfig
from livepose.crop import box_coverage, expand_keypoint_box, keypoints_to_box
from livepose.estimate import PoseEstimator
from livepose.records import FrameRecord, frame_record
from livepose.smooth import BankOutput, SmoothingBank
from livepose.sources import Frame, SourceStalled, SourceStatus
from livepose.track import Tracker

log = logging.getLogger(__name__)

STAGES = ("capture_wait", "detect", "crop", "infer", "decode", "track", "smooth", "total")


@dataclass
class Person:
    """One tracked person in one frame, as the renderer and the app use it."""

    track_id: int
    box: np.ndarray                # (4,) xywh
    raw: np.ndarray                # (17, 2)
    raw_scores: np.ndarray         # (17,)
    smoothed: np.ndarray           # (17, 2); equals raw when smoothing is off
    smoothed_scores: np.ndarray    # (17,)


@dataclass
class FrameResult:
    frame: Frame
    track_ids: list[int]
    boxes: np.ndarray              # (N, 4) xywh
    poses: BankOutput              # raw and smoothed keypoints of the N people
    smooth_cfg: SmoothConfig
    timings_ms: dict[str, float] = field(default_factory=dict)
    detector_ran: bool = False
    frame_age_ms: float = 0.0      # result time minus capture time

    @property
    def people(self) -> list[Person]:
        p = self.poses
        return [Person(tid, self.boxes[i], p.raw_keypoints[i], p.raw_scores[i], p.keypoints[i], p.scores[i])
                for i, tid in enumerate(self.track_ids)]

    def record(self) -> FrameRecord:
        """The JSONL record of this frame (what `livepose smooth` can re-filter)."""
        return frame_record(self.frame.index, self.frame.source_time, self.frame.source_time, self.track_ids,
                            self.boxes, self.poses, self.smooth_cfg, self.timings_ms)


class BackgroundDetector:
    """One detector call at a time on a worker thread; the caller picks up the people it found when ready.

    Detector objects are not thread-safe, so the pipeline ``wait()``s for a call in flight before it runs the
    detector itself. Frames must not be written to after they are handed over (sources hand out new arrays).
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="livepose-detect")
        self._future: Future | None = None

    def submit(self, detector, image: np.ndarray) -> bool:
        """Start ``detector(image)`` unless a call is still in flight."""
        if self._future is not None:
            return False
        self._future = self._pool.submit(self._timed, detector, image)
        return True

    @staticmethod
    def _timed(detector, image: np.ndarray) -> tuple[list, float]:
        t0 = time.perf_counter()
        return detector(image), (time.perf_counter() - t0) * 1e3

    @property
    def busy(self) -> bool:
        """A call is in flight and has not finished."""
        return self._future is not None and not self._future.done()

    def collect(self) -> tuple[list, float] | None:
        """(detections, ms the call took) once the call in flight has finished, else None."""
        if self._future is None or self.busy:
            return None
        future, self._future = self._future, None
        return future.result()

    def wait(self) -> None:
        """Let the call in flight finish and drop its result (the caller detects afresh, or the stream reset)."""
        if self._future is not None:
            future, self._future = self._future, None
            future.exception()


class Pipeline:
    """Stateful per stream: one tracker and one smoothing bank. Not thread-safe; one thread drives it."""

    def __init__(self, estimator: PoseEstimator, detector, cfg: PipelineConfig = PipelineConfig()) -> None:
        self.estimator = estimator
        self.detector = detector
        self.cfg = cfg
        self.tracker = Tracker(cfg.track)
        self.bank = SmoothingBank(cfg.smooth)
        self._frames_since_detect = 0
        self._need_detect = True
        self._last_time: float | None = None
        self._crop_boxes: dict[int, np.ndarray] = {}   # track id -> the box its last crop was made from
        self.background = BackgroundDetector() if cfg.track.background_detect else None

    def set_smoothing(self, cfg: SmoothConfig) -> None:
        """Switch filter or knobs live; the filters' state survives switching smoothing off and on."""
        self.bank.set_config(cfg)

    def set_detector(self, name: str) -> None:
        """Use another person detector from the next frame on (it runs at once, to find who it sees)."""
        from livepose.detect import make_detector

        if name != self.cfg.detector:
            self.cfg = replace(self.cfg, detector=name)
            self.detector = make_detector(self.cfg)
        self._need_detect = True

    def reset(self) -> None:
        """Forget every track (a seek, a new source)."""
        self.tracker.reset()
        self.bank.reset()
        self._crop_boxes = {}
        self._need_detect = True
        if self.background is not None:
            self.background.wait()

    def _roi_boxes(self) -> list[np.ndarray]:
        """Next-frame crops from the live tracks' last keypoints, shrinking at most ``roi_max_shrink`` a frame."""
        rois = []
        for t in self.tracker.tracks:
            box = self._keypoint_box(t.keypoints, t.scores) if t.misses == 0 else None
            if box is None:
                continue
            previous = self._crop_boxes.get(t.id)
            if previous is not None:
                floor = (1.0 - self.cfg.track.roi_max_shrink) * previous[2:]
                size = np.maximum(box[2:], floor)
                box = np.concatenate([box[:2] + box[2:] / 2 - size / 2, size]).astype(np.float32)
            rois.append(box)
        return rois

    def process(self, frame: Frame, capture_wait_ms: float = 0.0) -> FrameResult:
        t0 = time.perf_counter()
        if self._last_time is not None and frame.source_time < self._last_time:
            log.info("time went back from %.3f to %.3f s (seek or loop): tracks reset", self._last_time,
                     frame.source_time)
            self.reset()
        self._last_time = frame.source_time
        timings = dict.fromkeys(STAGES, 0.0)
        timings["capture_wait"] = capture_wait_ms
        image = frame.image
        rois = self._roi_boxes()
        urgent = self._need_detect or not rois
        due = self._frames_since_detect + 1 >= self.cfg.track.detect_every
        found = None
        if urgent or (due and self.background is None):
            if self.background is not None:
                self.background.wait()
            td = time.perf_counter()
            found = self.detector(image)
            timings["detect"] = (time.perf_counter() - td) * 1e3
            self._frames_since_detect = 0
        else:
            self._frames_since_detect += 1
            if self.background is not None:
                late = self.background.collect()
                if late is not None:
                    found, timings["detect_background"] = late
                if due and self.background.submit(self.detector, image):
                    self._frames_since_detect = 0
        boxes = rois if found is None else self._merge([d.box_xywh for d in found], rois)
        crop_boxes = np.array(boxes, np.float32).reshape(-1, 4)
        est = self.estimator(image, crop_boxes)
        timings.update(est.timings_ms)
        tt = time.perf_counter()
        # Identities follow the crop boxes (the detector's, or the ROIs from last frame's keypoints), not boxes
        # around the new keypoints: those jump with every misplaced joint, which on a street clip of small people
        # ended most tracks within a second (see Tracker).
        tracks = self.tracker.update(crop_boxes, est.keypoints, est.scores, frame.source_time)
        self._crop_boxes = {t.id: np.asarray(t.box, np.float32) for t in tracks if t.det_index >= 0}
        shown = [t for t in tracks if t.visible]
        timings["track"] = (time.perf_counter() - tt) * 1e3
        ts = time.perf_counter()
        j = self.estimator.num_joints
        ids = [t.id for t in shown]
        poses = self.bank.update(ids, np.array([t.keypoints for t in shown]).reshape(-1, j, 2),
                                 np.array([t.scores for t in shown]).reshape(-1, j), frame.source_time)
        timings["smooth"] = (time.perf_counter() - ts) * 1e3
        unsure = any(float(np.mean(t.scores)) < self.cfg.track.min_track_score for t in shown)
        self._need_detect = unsure or any(t.misses > 0 for t in tracks)
        timings["total"] = (time.perf_counter() - t0) * 1e3 + capture_wait_ms
        boxes_out = np.array([t.box for t in shown], np.float32).reshape(-1, 4)
        return FrameResult(frame, ids, boxes_out, poses, self.bank.cfg, timings, found is not None,
                           (time.monotonic() - frame.timestamp) * 1e3)

    def _merge(self, dets: list[np.ndarray], rois: list[np.ndarray]) -> list[np.ndarray]:
        """Detections plus the ROIs no detection covers: a detection replaces every ROI it mostly covers (the same
        person, also one whose ROI shrank onto their torso); ROIs the detector missed keep their track alive."""
        dets = dets[: self.cfg.detect.max_people]
        if dets and rois:
            covered = box_coverage(np.array(rois), np.array(dets)).max(axis=1)
            rois = [r for r, c in zip(rois, covered) if c < self.cfg.track.roi_replaced_coverage]
        return (list(dets) + rois)[: self.cfg.detect.max_people]

    def _keypoint_box(self, keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray | None:
        """The body box around the confident keypoints (grown: joints sit inside the body), or None."""
        box = keypoints_to_box(keypoints, scores, self.cfg.track.min_keypoint_score)
        return None if box is None else expand_keypoint_box(box)


class PipelineWorker(threading.Thread):
    """Runs a pipeline over a source on its own thread; each result goes to ``on_result``.

    ``stop()`` returns within about a second: reads time out, so a stalled camera cannot hold the thread.
    Any exception (a source error, or a library's own such as ``cv2.error``) ends the loop and is reported through
    ``on_error``, so the window can say it in one line.
    """

    def __init__(self, source, pipeline: Pipeline, on_result: Callable[[FrameResult], None],
                 on_error: Callable[[Exception], None] | None = None, read_timeout_s: float = 0.25) -> None:
        super().__init__(name="livepose-pipeline", daemon=True)
        self.source = source
        self.pipeline = pipeline
        self.on_result = on_result
        self.on_error = on_error
        self.read_timeout_s = read_timeout_s
        self._stop_event = threading.Event()
        self.finished = threading.Event()

    def stop(self, join_timeout_s: float = 1.0) -> None:
        self._stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(join_timeout_s)

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                tw = time.perf_counter()
                try:
                    frame = self.source.read(timeout=self.read_timeout_s)
                except SourceStalled:
                    if self.source.status in (SourceStatus.FAILED, SourceStatus.CLOSED):
                        break
                    continue  # a paused file or a camera reconnecting: keep the thread responsive
                if frame is None:  # the source has ended
                    break
                wait_ms = (time.perf_counter() - tw) * 1e3
                self.on_result(self.pipeline.process(frame, wait_ms))
        except Exception as exc:        # noqa: BLE001 - any failure (a cv2.error too) must reach the UI, not end
            log.error("pipeline stopped: %s", exc)   # the thread silently
            if self.on_error is not None:
                self.on_error(exc)
        finally:
            self.finished.set()
