"""The live core: detector-then-SimpleBaseline on each frame, tracked identities, per-joint smoothing.

Between detector runs each person's crop comes from their previous keypoints (as MediaPipe does), so most
frames skip the detector; it runs on the first frame (and whenever nobody is tracked), every ``detect_every``
frames to catch newcomers, and every ``lost_detect_every`` (every frame) while a track is lost or two overlap (there
a crop can show the wrong person, the detector, bottom-up, keeps them apart, and a hidden person may come out on any
frame). That periodic search
runs on its own thread (:class:`BackgroundDetector`), so its frames do not wait for it; its people join a frame or
two later, matched to the tracks where they were on the searched frame and moved along their velocity to now.

Overlapping people are kept apart like a tracker would, not by suppressing boxes. Each track has a velocity (its
joints' motion, ``track.Track``): its ROI moves along it, and a pose belongs to the track whose predicted pose it
matches, so a passer-by's pose, seen in his own crop and in the crop of the person he hides, goes to his track and
hers coasts; a track that missed keeps an ROI on its predicted box for ``roi_coast_frames`` and takes it back when
the crop shows her own pose again. A detection replaces a track's ROI only when it is that person (the detector's
own pose agrees with the track's predicted keypoints, or for box-only detectors those sit centred inside it);
every other detection is cropped beside the ROIs. After the network, poses that are not a person (phantoms on
objects, see ``track.person_like``) are dropped, and crops whose poses agree are one person: the crop whose track's
prediction agrees best is kept (``track.pose_nms``). A detection whose crop shows someone else's pose (a person half
hidden behind another) keeps the detector's own pose when that one differs.
``PipelineWorker`` runs the pipeline on a thread so a UI stays free. ``build_pipeline`` / ``load_pipeline`` make one
(network, detector and configs) from the model options of ``commands.options.add_model_arguments``, for every
command and the app.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Callable, Mapping, NamedTuple

import numpy as np

from livepose.config import DecodeConfig, LiteConfig, PipelineConfig, SmoothConfig
from livepose.crop import box_coverage, box_iou, expand_keypoint_box, keypoints_to_box
from livepose.detect import Detection, make_detector
from livepose.estimate import PoseEstimator
from livepose.nets.lite_cache import ExportFailed
from livepose.nets.load import load_network
from livepose.quiet import native_chatter_filtered
from livepose.records import FrameRecord, frame_record
from livepose.smooth import BankOutput, SmoothingBank
from livepose.sources import Frame, SourceStalled, SourceStatus
from livepose.track import Track, Tracker, keypoint_similarity, person_like, pose_nms, pose_owners, same_pose

log = logging.getLogger(__name__)

STAGES = ("capture_wait", "detect", "crop", "infer", "decode", "track", "smooth", "total")


@dataclass(frozen=True)
class Person:
    """One tracked person in one frame, as the renderer and the app use it."""

    track_id: int
    box: np.ndarray                # (4,) xywh
    raw: np.ndarray                # (17, 2)
    raw_scores: np.ndarray         # (17,)
    smoothed: np.ndarray           # (17, 2); equals raw when smoothing is off
    smoothed_scores: np.ndarray    # (17,)


@dataclass(frozen=True)
class FrameResult:
    """Everything one frame gave: the one value that crosses from the pipeline worker to the UI thread, so it is
    frozen (the UI draws it while the worker makes the next) and checked once here (one box and one pose a
    person)."""

    frame: Frame
    track_ids: tuple[int, ...]
    boxes: np.ndarray              # (N, 4) xywh
    poses: BankOutput              # raw and smoothed keypoints of the N people
    smooth_cfg: SmoothConfig
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    detector_ran: bool = False
    frame_age_ms: float = 0.0      # result time minus capture time

    def __post_init__(self) -> None:
        n = len(self.track_ids)
        if self.boxes.shape != (n, 4) or any(len(a) != n for a in self.poses):
            raise ValueError(f"a frame result of {n} people with {self.boxes.shape[0]} boxes and "
                             f"{[len(a) for a in self.poses]} poses")
        object.__setattr__(self, "track_ids", tuple(self.track_ids))
        object.__setattr__(self, "timings_ms", MappingProxyType(dict(self.timings_ms)))

    @property
    def people(self) -> list[Person]:
        p = self.poses
        return [Person(tid, self.boxes[i], p.raw_keypoints[i], p.raw_scores[i], p.keypoints[i], p.scores[i])
                for i, tid in enumerate(self.track_ids)]

    def record(self) -> FrameRecord:
        """The JSONL record of this frame (what `livepose smooth` can re-filter)."""
        return frame_record(self.frame.index, self.frame.source_time, self.frame.source_time, self.track_ids,
                            self.boxes, self.poses, self.smooth_cfg, self.timings_ms)


class Shown(NamedTuple):
    """The crops of a frame that show a person, one crop per person (``Pipeline._people``)."""

    keep: np.ndarray               # (N,) indices of the crops kept
    keypoints: np.ndarray          # (N, J, 2) their poses
    scores: np.ndarray             # (N, J)
    owners: np.ndarray             # (N,) id of the track each shows, -1: for the tracker to match
    confirmed: np.ndarray          # (N,) the detector's pose and the network's agree: a new track shows at once


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
        self._need_detect = True                       # detect on the next frame, whatever the schedule
        self._searching = False                        # a track is lost or two overlap: search every lost_detect_every
        self._fresh = True                             # the next frame is the stream's first: its people show at once
        self._last_time: float | None = None
        self._crop_boxes: dict[int, np.ndarray] = {}   # track id -> the box its last crop was made from
        self._search_time = 0.0                        # source time of the frame the background search was given
        self.background = BackgroundDetector() if cfg.track.background_detect else None

    def set_smoothing(self, cfg: SmoothConfig) -> None:
        """Switch filter or knobs live; the filters' state survives switching smoothing off and on."""
        self.bank.set_config(cfg)

    def set_detector(self, name: str) -> None:
        """Use another person detector from the next frame on (it runs at once, to find who it sees)."""
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
        self._fresh = True
        if self.background is not None:
            self.background.wait()

    def _roi_boxes(self, t: float) -> tuple[list[np.ndarray], list[int]]:
        """Crops for the frame at ``t`` from the tracks' last keypoints moved along their velocity (a walker's crop
        does not trail him), shrinking at most ``roi_max_shrink`` a frame, and the ids of their tracks.

        A track that missed keeps its ROI for ``roi_coast_frames`` (a person a passer-by hides, or whose crop showed
        the passer-by, coasts on her predicted box instead of waiting for the next detector search)."""
        rois, owners = [], []
        for trk in self.tracker.tracks:
            coasting_too_long = trk.misses > self.cfg.track.roi_coast_frames
            box = None if coasting_too_long else self._keypoint_box(trk.keypoints, trk.scores)
            if box is None:
                continue
            box[:2] += trk.predicted_shift(t)
            previous = self._crop_boxes.get(trk.id)
            if previous is not None:
                floor = (1.0 - self.cfg.track.roi_max_shrink) * previous[2:]
                size = np.maximum(box[2:], floor)
                box = np.concatenate([box[:2] + box[2:] / 2 - size / 2, size]).astype(np.float32)
            rois.append(box)
            owners.append(trk.id)
        return rois, owners

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
        rois, roi_owners = self._roi_boxes(frame.source_time)
        urgent = self._need_detect or not rois
        every = self.cfg.track.lost_detect_every if self._searching else self.cfg.track.detect_every
        due = self._frames_since_detect + 1 >= every
        found, found_time = None, frame.source_time
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
                    (found, timings["detect_background"]), found_time = late, self._search_time
                if due and self.background.submit(self.detector, image):
                    self._frames_since_detect = 0
                    self._search_time = frame.source_time
        dets = [] if found is None else found[: self.cfg.detect.max_people]
        owners = self._owners(dets, found_time)
        dets = self._brought_forward(dets, owners, frame.source_time - found_time)
        kept_rois = [i for i, o in enumerate(roi_owners) if o not in owners]       # no detection replaced them
        owners = (owners + [roi_owners[i] for i in kept_rois])[: self.cfg.detect.max_people]
        crop_boxes = np.array([d.box_xywh for d in dets] + [rois[i] for i in kept_rois],
                              np.float32).reshape(-1, 4)[: self.cfg.detect.max_people]
        est = self.estimator(image, crop_boxes)
        timings.update(est.timings_ms)
        tt = time.perf_counter()
        seen = self._people(crop_boxes, est.keypoints, est.scores, dets, owners, frame.source_time)
        # Identities follow the crop boxes (the detector's, or the ROIs from last frame's keypoints), not boxes
        # around the new keypoints: those jump with every misplaced joint, which on a street clip of small people
        # ended most tracks within a second (see Tracker).
        tracks = self.tracker.update(crop_boxes[seen.keep], seen.keypoints, seen.scores, frame.source_time,
                                     owners=seen.owners, confirm_new=seen.confirmed | self._fresh)
        self._fresh = False
        self._crop_boxes = {t.id: np.asarray(t.box, np.float32) if t.det_index >= 0 else self._crop_boxes[t.id]
                            for t in tracks if t.det_index >= 0 or t.id in self._crop_boxes}   # coasting: the last
        shown = [t for t in tracks if t.visible]
        timings["track"] = (time.perf_counter() - tt) * 1e3
        ts = time.perf_counter()
        j = self.estimator.num_joints
        ids = [t.id for t in shown]
        poses = self.bank.update(ids, np.array([t.keypoints for t in shown]).reshape(-1, j, 2),
                                 np.array([t.scores for t in shown]).reshape(-1, j), frame.source_time)
        timings["smooth"] = (time.perf_counter() - ts) * 1e3
        self._need_detect = False
        live = np.array([t.box for t in tracks if t.misses == 0]).reshape(-1, 4)
        crowded = (np.triu(box_iou(live, live), 1) >= self.cfg.track.overlap_iou).any()
        self._searching = crowded or any(t.misses > 0 for t in tracks)
        timings["total"] = (time.perf_counter() - t0) * 1e3 + capture_wait_ms
        boxes_out = np.array([t.box for t in shown], np.float32).reshape(-1, 4)
        return FrameResult(frame, ids, boxes_out, poses, self.bank.cfg, timings, found is not None,
                           (time.monotonic() - frame.timestamp) * 1e3)

    def _owners(self, dets: list[Detection], t: float) -> list[int]:
        """Per detection of the frame at ``t``, the id of the live track it is the person of (its crop replaces that
        track's ROI), or -1. Tracks are compared where their motion puts them at ``t``: a late search's ``t`` is past.

        A pose detector's own keypoints must agree with the track's (``same_person_oks``) and its box overlap the
        track's (``min_iou``: a few head joints of a seated person must not pull a passer-by's detection onto her);
        a box-only detection must hold the track's keypoint box, centred (``same_box_coverage``,
        ``same_centre_offset``), which a shrunken ROI of the same person passes and a person beside or behind does
        not. Of the pairs that pass, the tracker's similarity (box and pose, where each track was and where its
        motion takes it) assigns them one to one: two people crossing are told apart by where they are going.
        """
        from scipy.optimize import linear_sum_assignment

        tracks = self.tracker.tracks
        live = [i for i, trk in enumerate(tracks) if trk.misses <= self.cfg.track.roi_coast_frames]
        if not dets or not live:
            return [-1] * len(dets)
        j = self.estimator.num_joints
        poses = np.stack([np.zeros((j, 3)) if d.pose is None else d.pose for d in dets])
        sim = self.tracker.similarity(np.stack([d.box_xywh for d in dets]), poses[..., :2], poses[..., 2], t)[live]
        same = np.stack([self._same_person(d, [tracks[i] for i in live], t) for d in dets], axis=1)  # (live, dets)
        score = np.where(same, sim, 0.0)
        rows, cols = linear_sum_assignment(-score)
        owners = [-1] * len(dets)
        for r, c in zip(rows, cols):
            if score[r, c] > 0:
                owners[c] = tracks[live[r]].id
        return owners

    def _brought_forward(self, dets: list[Detection], owners: list[int], dt: float) -> list[Detection]:
        """Detections of a frame ``dt`` s old (the background search lands a frame or two late) moved along their
        owner tracks' velocity to now: a walker's late box would crop where he was, half on whoever he passed."""
        if dt <= 0:
            return dets
        velocity = {trk.id: trk.velocity for trk in self.tracker.tracks if trk.velocity is not None}
        return [det if o not in velocity else moved(det, velocity[o] * dt) for det, o in zip(dets, owners)]

    def _same_person(self, det: Detection, tracks: list[Track], t: float) -> np.ndarray:
        """(tracks,) whether a detection at time ``t`` can be each track's person, where its motion takes it (see
        :meth:`_owners`)."""
        cfg = self.cfg.track
        kp = np.stack([trk.predicted_keypoints(t) for trk in tracks])
        sc = np.stack([trk.scores for trk in tracks])
        boxes = np.stack([trk.predicted_box(t) for trk in tracks])
        if det.pose is not None:
            same = same_pose(kp, sc, boxes[:, 2] * boxes[:, 3], det.pose[None, :, :2], det.pose[None, :, 2],
                             cfg.same_person_oks, cfg)[:, 0]
            return same & (box_iou(boxes, det.box_xywh)[:, 0] >= cfg.min_iou)
        out = np.zeros(len(tracks), bool)
        box = np.asarray(det.box_xywh, np.float64)
        for i, (k, s) in enumerate(zip(kp, sc)):
            kbox = keypoints_to_box(k, s, cfg.min_keypoint_score)
            if kbox is not None:
                offset = np.abs(kbox[:2] + kbox[2:] / 2 - (box[:2] + box[2:] / 2)) / np.maximum(box[2:], 1.0)
                out[i] = (box_coverage(kbox, box)[0, 0] >= cfg.same_box_coverage
                          and (offset <= cfg.same_centre_offset).all())
        return out

    def _people(self, boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, dets: list[Detection],
                owners: list[int], t: float) -> Shown:
        """The crops of the frame at ``t`` that show a person, one crop per person (see :class:`Shown`).

        A top-down network shows whoever dominates a crop, so where people overlap a crop can show someone else
        than it was cut for. A detection's crop whose pose disagrees with the detector's own pose, or is no person,
        keeps the detector's (the bottom-up detector keeps overlapping people apart); where the two agree, two models
        saw the person, which confirms a new track as a second frame would. Each pose is compared with every track's
        predicted pose (its last keypoints moved along its velocity), and the tracks' crops are given to the tracks
        whose people they show, one to one (``track.pose_owners``): where two people's crops show each other, each
        pose goes to its person's track; a crop that shows another track's person whom that track's own crop shows
        better, or a coasting track's crop that does not show its own, shows no one this frame: its track coasts
        instead of taking over the other's identity. Of crops that still show one pose twice, the one whose track's
        prediction it agrees with best is kept (``pose_nms``): the passer-by's pose goes to the passer-by's track.
        Poses that are not a person are dropped.
        """
        cfg = self.cfg.track
        keypoints, scores = keypoints.copy(), scores.copy()
        areas = boxes[:, 2] * boxes[:, 3]
        both = np.zeros(len(boxes), bool)          # the detector's pose and the network's agree on a person
        for i, det in enumerate(dets):
            if det.pose is None or not person_like(det.pose[None, :, 2], cfg)[0]:
                continue
            both[i] = person_like(scores[i:i + 1], cfg)[0] and same_pose(
                keypoints[i:i + 1], scores[i:i + 1], areas[i:i + 1], det.pose[None, :, :2], det.pose[None, :, 2],
                cfg.detector_pose_oks, cfg)[0, 0]
            if not both[i]:
                keypoints[i], scores[i] = det.pose[:, :2], det.pose[:, 2]
        tracks = self.tracker.tracks
        agree = np.zeros((len(boxes), len(tracks)))
        if tracks and len(boxes):
            sim, shared = keypoint_similarity(keypoints, scores, areas,
                                              np.stack([trk.predicted_keypoints(t) for trk in tracks]),
                                              np.stack([trk.scores for trk in tracks]), cfg.min_keypoint_score)
            agree = np.where(shared >= cfg.min_shared_joints, sim, 0.0)
        mine = np.array([[trk.id == o for trk in tracks] for o in owners], bool).reshape(agree.shape)
        coasting = np.array([trk.misses > 0 for trk in tracks], bool)
        shows, own = pose_owners(agree, mine, coasting, cfg)
        ids = np.array([tracks[k].id if k >= 0 else -1 for k in shows], int)
        cut = mine.any(axis=1)
        hits = {trk.id: trk.hits for trk in tracks}
        det_score = [d.score for d in dets] + [0.0] * (len(boxes) - len(dets))
        order = sorted((i for i in range(len(boxes)) if (shows[i] >= 0 or not cut[i])
                        and person_like(scores[i:i + 1], cfg)[0]),
                       key=lambda i: (-own[i], -hits.get(ids[i], 0), -det_score[i]))
        kept = pose_nms(keypoints[order], scores[order], areas[order], cfg)
        keep = np.array(sorted(order[k] for k in kept), int)
        return Shown(keep, keypoints[keep], scores[keep], ids[keep], both[keep])

    def _keypoint_box(self, keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray | None:
        """The body box around the confident keypoints (grown: joints sit inside the body), or None."""
        box = keypoints_to_box(keypoints, scores, self.cfg.track.min_keypoint_score)
        return None if box is None else expand_keypoint_box(box)


def moved(det: Detection, shift: np.ndarray) -> Detection:
    """The detection with its boxes and points moved by ``shift`` (x, y) pixels."""
    def points(p: np.ndarray | None, xy: int) -> np.ndarray | None:    # the first ``xy`` columns are positions
        return None if p is None else np.c_[np.asarray(p)[..., :xy] + shift, np.asarray(p)[..., xy:]]

    return replace(det, box_xywh=points(det.box_xywh[None], 2)[0], keypoints=points(det.keypoints, 2),
                   face_box_xywh=None if det.face_box_xywh is None else points(det.face_box_xywh[None], 2)[0],
                   pose=points(det.pose, 2))


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


# --- building a pipeline from the model options --------------------------------------------------------------

def pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    """The stage configs the model options ask for (smoothing, detector, people cap, flip test)."""
    cfg = PipelineConfig()
    smooth = replace(cfg.smooth, method="none" if args.no_smooth else args.filter,
                     process_noise=args.process_noise, measurement_noise=args.measurement_noise)
    detect = cfg.detect if args.max_people is None else replace(cfg.detect, max_people=args.max_people)
    track = replace(cfg.track, background_detect=not args.sync_detect)
    return replace(cfg, smooth=smooth, detect=detect, detector=args.detector, track=track,
                   decode=replace(DecodeConfig(), flip_test=args.flip_test))


def build_pipeline(args: argparse.Namespace, threads: int | None = None):
    """Model + detector + pipeline from command-line options.

    ``threads`` caps the LiteRT network's and the detectors' CPU threads, for processes that share a machine (batch
    workers); None keeps each config's default.
    """
    cfg = pipeline_config(args)
    lite_cfg = LiteConfig()
    if threads is not None:   # every stage config with a thread count (the detectors'), and the LiteRT network's
        cfg = replace(cfg, **{f.name: replace(getattr(cfg, f.name), num_threads=threads) for f in fields(cfg)
                              if hasattr(getattr(cfg, f.name), "num_threads")})
        lite_cfg = replace(lite_cfg, num_threads=threads)
    net = load_network(args.model, input_size=args.input_size, batch_sizes=cfg.batch_sizes, runtime=args.runtime,
                       precision=args.precision, lite_cfg=lite_cfg)
    return Pipeline(PoseEstimator(net, cfg.crop, cfg.decode), make_detector(cfg), cfg), net.name


#: what loading weights raises for a user's mistake (missing, damaged or foreign weights, a failed LiteRT export):
#: reported as one line, never a traceback
MODEL_LOAD_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, ExportFailed)


def load_pipeline(args: argparse.Namespace, prog: str):
    """:func:`build_pipeline` for an entry point (a command, the app): missing, damaged or foreign weights (or a LiteRT export
    of them that failed) are one line on stderr and ``None``, not a traceback, so every command that loads a model
    fails the same clear way. LiteRT's start-up lines are left out unless ``--verbose``."""
    try:
        with native_chatter_filtered():
            return build_pipeline(args)
    except MODEL_LOAD_ERRORS as exc:      # named by its path when the loader's message does not say which file
        print(f"{prog}: {exc}" if str(args.model) in str(exc) else f"{prog}: {args.model}: {exc}", file=sys.stderr)
        return None
