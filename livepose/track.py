"""Stable person identities across frames: detections are matched to tracks by box IoU and keypoint similarity.

Similarity of a track and a detection = the larger of the box IoU and ``iou_weight * IoU + (1 - iou_weight) *
OKS``, where OKS is the COCO keypoint similarity (skeleton.OKS_SIGMAS, object area = the track's box area) over the
joints confident in both (``min_keypoint_score``); with no such joint it is the IoU alone. Keypoints tell apart two
people whose boxes overlap (crossing, hugging), where IoU alone is ambiguous; they only add evidence, because OKS
of a small, roughly posed person is low even against itself a frame later (on the OpenPose street clip, the plain
mix ended most tracks of distant walkers within a second). The similarity is computed for the track where it
was last seen and where its velocity takes it now; the better of the two counts, so fast motion still
matches and a wrong velocity cannot break a match. The velocity is the mean shift of the joints confident in two
matches in a row (kept as it was where too few are), averaged over matches (``velocity_smoothing``): a crop box's
centre jumps with every misplaced edge joint (on the synthetic group video of issue 28, box-centre velocities of
walkers moving 380 and 610 px/s swung between -1000 and +1900 px/s from frame to frame; the smoothed joint velocity
stayed within about 200 px/s of the true one). Pairs are assigned with the Hungarian algorithm
(scipy's linear_sum_assignment); pairs below ``min_iou`` similarity are never matched.

A detection the caller knows to be a track's person (cropped from that track's ROI, as in MediaPipe's ROI
tracking) is given to it outright (``owners``); only the others are matched by similarity.

Life cycle (SORT-like): an unmatched detection starts a tentative track; it is confirmed after ``min_hits`` matched
frames (at once on a stream's first frame, as ByteTrack does: no earlier frame can confirm anyone there, and where
the caller says two models saw the person); a tentative track that misses a frame ends; a confirmed one ends after
``max_misses`` missed frames in a row (it is not drawn meanwhile, but a person back within them takes her id back).
Ids are never reused within one Tracker. The pure functions below decide what the pipeline gives the tracker:
whether a pose is a person at all (``person_like``), which track's person each crop shows (``pose_owners``) and
which crops show one person twice (``pose_nms``).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from livepose.config import TrackConfig
from livepose.crop import box_iou
from livepose.skeleton import OKS_SIGMAS


@dataclass
class Track:
    """One person over time. ``box`` xywh, ``keypoints`` (J, 2), ``scores`` (J,) are from the last match."""

    id: int
    box: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    t: float                          # time (s) of the last match
    hits: int = 1                     # matched frames, birth included
    misses: int = 0                   # frames in a row without a match
    confirmed: bool = False
    age: int = 0                      # frames since birth
    velocity: np.ndarray | None = None  # px/s: mean joint shift between matches, smoothed (see module docstring)
    det_index: int = -1               # the detection it matched in the latest update (-1: none)

    @property
    def visible(self) -> bool:
        """Confirmed and matched in the current frame: what a renderer should draw."""
        return self.confirmed and self.misses == 0

    def predicted_shift(self, t: float) -> np.ndarray:
        """Displacement (x, y) expected from the last match to ``t``."""
        return np.zeros(2) if self.velocity is None else self.velocity * (t - self.t)

    def predicted_box(self, t: float) -> np.ndarray:
        """The box (xywh) moved along the velocity to time ``t``."""
        return np.concatenate([self.box[:2] + self.predicted_shift(t), self.box[2:]])

    def predicted_keypoints(self, t: float) -> np.ndarray:
        """(J, 2) the keypoints moved along the velocity to time ``t``."""
        return self.keypoints + self.predicted_shift(t)


def joint_shift(kp_a: np.ndarray, sc_a: np.ndarray, kp_b: np.ndarray, sc_b: np.ndarray, min_score: float,
                min_joints: int) -> np.ndarray | None:
    """Mean (x, y) shift from pose ``a`` to pose ``b`` (J, 2) over joints confident in both, or None where fewer
    than ``min_joints`` are: the body's motion, which one misplaced joint moves by a share only. Not the median: a
    network that pulls the joints of both sides inwards moves the median of an odd count of joints sideways, and
    an ROI moved along it drifts off the person."""
    both = (sc_a >= min_score) & (sc_b >= min_score)
    if both.sum() < min_joints:
        return None
    return np.mean(kp_b[both] - kp_a[both], axis=0)


def keypoint_similarity(kp_a: np.ndarray, sc_a: np.ndarray, areas: np.ndarray, kp_b: np.ndarray, sc_b: np.ndarray,
                        min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """OKS between (N, J, 2) and (M, J, 2) keypoints over joints confident in both, with the areas (N,) of ``a``.

    Returns the (N, M) similarity and the (N, M) number of joints it was computed over.
    """
    both = (sc_a[:, None] >= min_score) & (sc_b[None] >= min_score)                      # (N, M, J)
    d2 = np.sum((kp_a[:, None] - kp_b[None]) ** 2, axis=-1)
    e = d2 / (2.0 * np.maximum(areas, 1.0)[:, None, None] * (2 * OKS_SIGMAS) ** 2)
    n = both.sum(axis=-1)
    sim = np.where(both, np.exp(-e), 0.0).sum(axis=-1) / np.maximum(n, 1)
    return sim, n


def same_pose(kp_a: np.ndarray, sc_a: np.ndarray, areas: np.ndarray, kp_b: np.ndarray, sc_b: np.ndarray,
              min_oks: float, cfg: TrackConfig) -> np.ndarray:
    """(N, M): the poses agree (OKS >= ``min_oks`` over at least ``min_shared_joints`` joints confident in both).

    Two people whose boxes overlap still differ in most joints, so agreement of the joints, not of the boxes, is
    what makes two crops (or a detection and a track) one person.
    """
    sim, shared = keypoint_similarity(kp_a, sc_a, areas, kp_b, sc_b, cfg.min_keypoint_score)
    return (shared >= cfg.min_shared_joints) & (sim >= min_oks)


def person_like(scores: np.ndarray, cfg: TrackConfig) -> np.ndarray:
    """(N,) for (N, J) keypoint scores: enough confident joints to be a person rather than a phantom.

    On images_gt the shipped network gives every labelled person on its GT box >= 8 joints over 0.3 and a mean
    score >= 0.34; crops of background or objects mostly give a few scattered joints and a mean near 0.2.
    """
    return (((scores >= cfg.min_keypoint_score).sum(axis=1) >= cfg.min_person_joints)
            & (scores.mean(axis=1) >= cfg.min_track_score))


def pose_owners(agree: np.ndarray, mine: np.ndarray, coasting: np.ndarray, cfg: TrackConfig
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per crop, the track whose person its pose shows (index into the tracks, -1: none of them) and its agreement.

    ``agree`` (crops, tracks): OKS of each crop's pose against each track's predicted pose; ``mine`` (crops, tracks):
    the track a crop was cut for; ``coasting`` (tracks,): tracks that missed. A crop shows another track's person
    when its pose agrees with that track better than with its own and at least ``taken_oks`` (where a passer-by's
    body fills the crop of the person behind him); a coasting track's crop must agree at least ``same_person_oks``
    with its own prediction (she is back), or it shows someone the tracker does not follow yet. Crops are then
    given to the tracks they show one to one (Hungarian on the agreement): where two people's crops show each other
    (their ROIs swapped places while they crossed or stood overlapped), each pose goes to the track it shows, instead
    of both tracks coasting; a crop left without a track showed someone whose own crop shows them better (it shows
    no one this frame: its track coasts). Crops cut for no track (new detections) get -1 too: the tracker matches
    them. Returns (owner, agreement with it).
    """
    cut = mine.any(axis=1)
    own = np.where(mine, agree, 0.0).max(axis=1, initial=0.0)
    other = np.where(mine, 0.0, agree).max(axis=1, initial=0.0)
    taken = ((other >= cfg.taken_oks) & (other > own))[:, None] | (coasting[None] & (agree < cfg.same_person_oks))
    allowed = np.where(mine, ~taken, agree >= cfg.taken_oks) & cut[:, None]
    score = np.where(allowed, agree, -1.0)
    rows, cols = linear_sum_assignment(-score) if score.size else (np.array([], int), np.array([], int))
    owner = np.full(len(agree), -1)
    good = score[rows, cols] >= 0
    owner[rows[good]] = cols[good]
    agreement = np.zeros(len(owner))
    agreement[owner >= 0] = agree[owner >= 0, owner[owner >= 0]]
    return owner, agreement


def pose_nms(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, cfg: TrackConfig) -> np.ndarray:
    """Greedy duplicate removal over poses in priority order (the first wins): the indices kept."""
    same = same_pose(keypoints, scores, areas, keypoints, scores, cfg.duplicate_oks, cfg)
    kept: list[int] = []
    for i in range(len(keypoints)):
        if not any(same[k, i] or same[i, k] for k in kept):
            kept.append(i)
    return np.asarray(kept, int)


class Tracker:
    """Assigns ids to the people of each frame; see the module docstring for the rules."""

    def __init__(self, cfg: TrackConfig = TrackConfig()) -> None:
        self.cfg = cfg
        self.tracks: list[Track] = []
        self._ids = itertools.count()

    def reset(self) -> None:
        """Drop all tracks; ids keep counting so none is ever reused."""
        self.tracks = []

    def similarity(self, boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, t: float) -> np.ndarray:
        """(tracks, detections) similarity at time ``t``: the better of the last and the predicted position."""
        if not self.tracks or not len(boxes):
            return np.zeros((len(self.tracks), len(boxes)))
        track_boxes = np.stack([trk.box for trk in self.tracks])
        track_kp = np.stack([trk.keypoints for trk in self.tracks])
        track_sc = np.stack([trk.scores for trk in self.tracks])
        shift = np.stack([trk.predicted_shift(t) for trk in self.tracks])
        # both positions in one pass: rows 0..T-1 where each track was, rows T..2T-1 where it is predicted
        both = self._similarity(np.concatenate([track_boxes, track_boxes + np.c_[shift, np.zeros_like(shift)]]),
                                np.concatenate([track_kp, track_kp + shift[:, None]]),
                                np.concatenate([track_sc, track_sc]), boxes, keypoints, scores)
        return np.maximum(both[:len(self.tracks)], both[len(self.tracks):])

    def _similarity(self, track_boxes: np.ndarray, track_kp: np.ndarray, track_sc: np.ndarray, boxes: np.ndarray,
                    keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray:
        iou = box_iou(track_boxes, boxes)
        oks, shared = keypoint_similarity(track_kp, track_sc, track_boxes[:, 2] * track_boxes[:, 3], keypoints,
                                          scores, self.cfg.min_keypoint_score)
        w = self.cfg.iou_weight
        return np.where(shared > 0, np.maximum(iou, w * iou + (1 - w) * oks), iou)

    def update(self, boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, t: float,
               owners: np.ndarray | None = None, confirm_new: bool | np.ndarray = False) -> list[Track]:
        """Match the detections of the frame at ``t`` (s); returns snapshots of all live tracks (``Track.visible``).

        ``boxes`` (N, 4) xywh, ``keypoints`` (N, J, 2), ``scores`` (N, J). ``owners`` (N,): the id of the track a
        detection is known to belong to (it was cropped from that track's ROI, as in MediaPipe's ROI tracking), -1
        where unknown; only the unknown ones are matched by similarity. ``confirm_new`` (bool, or (N,) per
        detection): new tracks are shown at once (a stream's first frame, where no earlier frame can confirm
        anyone; a person two models saw).
        """
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        keypoints = np.asarray(keypoints, np.float64)
        scores = np.asarray(scores, np.float64)
        if keypoints.ndim != 3 or len(keypoints) != len(boxes) or scores.shape != keypoints.shape[:2]:
            raise ValueError(f"need boxes (N, 4), keypoints (N, J, 2), scores (N, J); got {boxes.shape}, "
                             f"{keypoints.shape}, {scores.shape}")
        sim = self.similarity(boxes, keypoints, scores, t)
        if owners is not None:
            sim = self._own(sim, np.asarray(owners, int))
        rows, cols = linear_sum_assignment(-sim) if sim.size else (np.array([], int), np.array([], int))
        good = sim[rows, cols] >= self.cfg.min_iou
        matched_tracks, matched_dets = set(rows[good].tolist()), set(cols[good].tolist())

        for r, c in zip(rows[good], cols[good]):
            self._match(self.tracks[r], int(c), boxes[c], keypoints[c], scores[c], t)
        survivors = []
        for i, trk in enumerate(self.tracks):
            if i not in matched_tracks:
                trk.det_index = -1
                trk.misses += 1
                trk.age += 1
                if not trk.confirmed or trk.misses > self.cfg.max_misses:
                    continue
            survivors.append(trk)
        confirm_new = np.broadcast_to(np.asarray(confirm_new, bool), (len(boxes),))
        for c in range(len(boxes)):
            if c not in matched_dets:
                survivors.append(Track(next(self._ids), boxes[c].copy(), keypoints[c].copy(), scores[c].copy(), t,
                                       confirmed=bool(confirm_new[c]) or self.cfg.min_hits <= 1, det_index=c))
        self.tracks = survivors
        return [dataclasses.replace(trk) for trk in self.tracks]     # snapshots: later frames do not change them

    def _own(self, sim: np.ndarray, owners: np.ndarray) -> np.ndarray:
        """Similarity with each owned detection tied to its owner: the pair is certain, neither takes another."""
        sim = sim.copy()
        for row, trk in enumerate(self.tracks):
            for c in np.nonzero(owners == trk.id)[0]:
                sim[row, :] = 0.0
                sim[:, c] = 0.0
                sim[row, c] = 1.0 + self.cfg.min_iou
        return sim

    def _match(self, trk: Track, det_index: int, box: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
               t: float) -> None:
        if t > trk.t:
            shift = joint_shift(trk.keypoints, trk.scores, keypoints, scores, self.cfg.min_keypoint_score,
                                self.cfg.min_person_joints)
            if shift is not None:
                step, a = shift / (t - trk.t), self.cfg.velocity_smoothing
                trk.velocity = step if trk.velocity is None else a * step + (1 - a) * trk.velocity
        trk.box, trk.keypoints, trk.scores, trk.t = box.copy(), keypoints.copy(), scores.copy(), t
        trk.det_index = det_index
        trk.hits += 1
        trk.misses = 0
        trk.age += 1
        trk.confirmed = trk.confirmed or trk.hits >= self.cfg.min_hits
