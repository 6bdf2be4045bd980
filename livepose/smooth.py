"""Per-joint temporal smoothing of tracked people's keypoints, and a bank that smooths every track of a stream.

Two filters behind one interface (:class:`PoseSmoother`):

* :class:`KalmanSmoother`: a linear Kalman filter per joint, constant velocity ("cv", state x, vx) or constant
  acceleration ("ca", state x, vx, ax) per image axis. F and Q are rebuilt from the real time between frames
  (``filterpy.common.Q_discrete_white_noise``), so dropped frames and a variable frame rate are handled.
  The measurement noise follows the keypoint's heatmap confidence:
  ``R = (measurement_noise / max(score, SCORE_EPS))**2`` px^2, i.e. ``measurement_noise`` is the noise std in px of
  a keypoint of confidence 1, and a keypoint of confidence 0.5 is trusted as if twice as noisy.
* :class:`OneEuroSmoother`: the One Euro filter (Casiez, Roussel & Vogel, CHI 2012) with the real dt, the filter
  MediaPipe uses.

Both treat a keypoint with ``score < min_score`` (or a non-finite position) as missing: the Kalman filter predicts
(the One Euro filter holds) its last position for at most ``max_predict_s`` seconds, reporting the last good score;
after that the joint is dropped (position NaN, score 0) and re-initialised from the next good measurement.

Why not one ``filterpy.kalman.KalmanFilter`` object per joint: that costs about 3 ms per person per frame here.
The x and y axes share F, Q and (isotropic) R, so they share one covariance; all joints share F and Q. The filter
below runs all joints at once with numpy and is checked against filterpy's ``KalmanFilter`` in the tests.
:class:`SmoothingBank` packs all people of a stream into one filter, so a frame costs one vectorised update.

``process_noise`` is in image px: tuned on PennAction (480x360-ish frames, people 100-300 px tall) with 3 px of
noise; far larger people move more px per second and may want a larger value.
"""

from __future__ import annotations

import functools
import itertools
from typing import NamedTuple, Protocol, Sequence

import numpy as np
from filterpy.common import Q_discrete_white_noise

from livepose.config import SmoothConfig
from livepose.skeleton import NUM_KEYPOINTS

SCORE_EPS = 1e-3          # floor on the confidence that divides the measurement noise (no division by zero)
METHODS = ("kalman", "oneeuro", "none")
MOTION_MODELS = {"cv": 2, "ca": 3}   # motion model -> state size per axis


class PoseSmoother(Protocol):
    """Smooths one person's (17, 2) keypoints over time. ``cfg`` may be replaced between updates."""

    cfg: SmoothConfig

    def update(self, keypoints: np.ndarray, scores: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Feed the raw keypoints at time ``t`` (s); returns smoothed keypoints (17, 2) and their scores (17,)."""
        ...

    def reset(self) -> None:
        """Forget all state; the next update starts afresh."""
        ...


class _JointClock:
    """Which joints are alive, when each was last measured, and with what score (shared by both filters)."""

    def __init__(self, num_joints: int) -> None:
        self.alive = np.zeros(num_joints, bool)
        self.last_seen = np.zeros(num_joints)
        self.last_score = np.zeros(num_joints)
        self.t_prev: float | None = None

    def step(self, keypoints: np.ndarray, scores: np.ndarray, t: float, cfg: SmoothConfig) -> tuple[float, np.ndarray]:
        """Advance to ``t``: returns dt since the previous update and the mask of joints measured now.

        Joints unmeasured for longer than ``max_predict_s`` stop being alive.
        """
        if self.t_prev is not None and t < self.t_prev:
            raise ValueError(f"timestamps must not decrease: got t={t} after t={self.t_prev}")
        dt = 0.0 if self.t_prev is None else t - self.t_prev
        self.t_prev = t
        seen = (scores >= cfg.min_score) & np.isfinite(keypoints).all(axis=1)
        self.alive &= seen | (t - self.last_seen <= cfg.max_predict_s)
        return dt, seen

    def grow(self, extra: int) -> None:
        """Append ``extra`` dead joints."""
        self.alive = np.concatenate([self.alive, np.zeros(extra, bool)])
        self.last_seen = np.concatenate([self.last_seen, np.zeros(extra)])
        self.last_score = np.concatenate([self.last_score, np.zeros(extra)])

    def mark_seen(self, seen: np.ndarray, scores: np.ndarray, t: float) -> None:
        self.alive |= seen
        self.last_seen[seen] = t
        self.last_score[seen] = scores[seen]

    def output(self, positions: np.ndarray, seen: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dead joints -> NaN and score 0; coasting joints keep their last good score."""
        out = np.where(self.alive[:, None], positions, np.nan)
        out_scores = np.where(seen, scores, np.where(self.alive, self.last_score, 0.0))
        return out, out_scores


@functools.lru_cache(maxsize=16)
def _motion_model(dt: float, dim: int, var: float) -> tuple[np.ndarray, np.ndarray]:
    """Transition F and process noise Q for one axis (position, velocity (, acceleration)).

    Cached: every person of a frame shares the same dt, and Q_discrete_white_noise costs ~40 us a call.
    """
    f = np.eye(dim)
    f[0, 1] = dt
    if dim == 3:
        f[1, 2] = dt
        f[0, 2] = 0.5 * dt * dt
    q = np.asarray(Q_discrete_white_noise(dim, dt=dt, var=var), np.float64)
    f.flags.writeable = q.flags.writeable = False
    return f, q


class _JointFilter:
    """Rows of independent joints sharing one clock. The bank packs several people into the rows of one filter,
    so a frame costs one vectorised update however many people it holds."""

    def __init__(self, cfg: SmoothConfig = SmoothConfig(), num_joints: int = NUM_KEYPOINTS) -> None:
        self.cfg = cfg
        self.num_joints = num_joints
        self.reset()

    def reset(self) -> None:
        self.clock = _JointClock(self.num_joints)
        self._new_state()

    def forget(self, rows: slice | np.ndarray) -> None:
        """Drop these joints: they start afresh at their next measurement."""
        self.clock.alive[rows] = False

    def grow(self, num_joints: int) -> None:
        """Make room for ``num_joints`` rows; the new ones start dead."""
        extra = num_joints - self.num_joints
        if extra > 0:
            self.clock.grow(extra)
            self._grow_state(extra)
            self.num_joints = num_joints

    def _new_state(self) -> None:
        raise NotImplementedError

    def _grow_state(self, extra: int) -> None:
        raise NotImplementedError


class KalmanSmoother(_JointFilter):
    """Kalman filter per joint, all joints at once. State x: (J, dim, 2) (per axis), covariance P: (J, dim, dim)."""

    def _new_state(self) -> None:
        self._dim = MOTION_MODELS.get(self.cfg.motion_model, 0)
        self.x = np.zeros((self.num_joints, self._dim, 2))
        self.P = np.zeros((self.num_joints, self._dim, self._dim))

    def _grow_state(self, extra: int) -> None:
        self.x = np.concatenate([self.x, np.zeros((extra, self._dim, 2))])
        self.P = np.concatenate([self.P, np.zeros((extra, self._dim, self._dim))])

    def _ensure_model(self) -> int:
        if self.cfg.motion_model not in MOTION_MODELS:
            raise ValueError(f"motion_model must be one of {tuple(MOTION_MODELS)}, got {self.cfg.motion_model!r}")
        if MOTION_MODELS[self.cfg.motion_model] != self._dim:     # cv <-> ca cannot keep the state: start again
            self.reset()
        return self._dim

    def _initial_covariance(self, r: np.ndarray, dim: int) -> np.ndarray:
        p0 = np.zeros((len(r), dim, dim))
        p0[:, 0, 0] = r
        p0[:, 1, 1] = self.cfg.initial_velocity_std ** 2
        if dim == 3:
            p0[:, 2, 2] = self.cfg.initial_acceleration_std ** 2
        return p0

    def update(self, keypoints: np.ndarray, scores: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        z = np.asarray(keypoints, np.float64).reshape(self.num_joints, 2)
        s = np.asarray(scores, np.float64).reshape(self.num_joints)
        dim = self._ensure_model()
        dt, seen = self.clock.step(z, s, t, self.cfg)
        alive = self.clock.alive
        if dt > 0:                           # dead joints are predicted too: cheaper than masking, never read
            f, q = _motion_model(dt, dim, self.cfg.process_noise)
            self.x = f @ self.x
            self.P = f @ self.P @ f.T + q
        r = (self.cfg.measurement_noise / np.maximum(s, SCORE_EPS)) ** 2
        upd = (alive & seen)[:, None]
        gain = self.P[:, :, 0] / (self.P[:, 0, 0] + r)[:, None]            # (J, dim): H = [1, 0, ...]
        innovation = np.where(upd, z - self.x[:, 0], 0.0)
        self.x += gain[:, :, None] * innovation[:, None, :]
        self.P -= np.where(upd[:, :, None], gain[:, :, None] * self.P[:, None, 0, :], 0.0)
        born = seen & ~alive
        if born.any():
            self.x[born] = 0.0
            self.x[born, 0] = z[born]
            self.P[born] = self._initial_covariance(r[born], dim)
        self.clock.mark_seen(seen, s, t)
        return self.clock.output(self.x[:, 0].copy(), seen, s)


class OneEuroSmoother(_JointFilter):
    """One Euro filter per joint and axis, with each joint's real time since its last measurement.

    As the authors' reference and MediaPipe's one_euro_filter.cc: the speed is taken between this sample and the
    previous *raw* sample (``z_prev``), not the filtered state, which would feed the filter's own lag back into it.
    """

    def _new_state(self) -> None:
        self.x = np.zeros((self.num_joints, 2))
        self.dx = np.zeros((self.num_joints, 2))
        self.z_prev = np.zeros((self.num_joints, 2))

    def _grow_state(self, extra: int) -> None:
        self.x = np.concatenate([self.x, np.zeros((extra, 2))])
        self.dx = np.concatenate([self.dx, np.zeros((extra, 2))])
        self.z_prev = np.concatenate([self.z_prev, np.zeros((extra, 2))])

    @staticmethod
    def _alpha(cutoff: float | np.ndarray, dt: np.ndarray) -> np.ndarray:
        tau = 1.0 / (2.0 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def update(self, keypoints: np.ndarray, scores: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        z = np.asarray(keypoints, np.float64).reshape(self.num_joints, 2)
        s = np.asarray(scores, np.float64).reshape(self.num_joints)
        last_seen = self.clock.last_seen.copy()
        _, seen = self.clock.step(z, s, t, self.cfg)
        dt = t - last_seen
        idx = np.flatnonzero(self.clock.alive & seen & (dt > 0))   # a repeated timestamp carries no news
        if len(idx):
            dt = dt[idx, None]
            speed = (z[idx] - self.z_prev[idx]) / dt
            self.dx[idx] += self._alpha(self.cfg.oneeuro_d_cutoff, dt) * (speed - self.dx[idx])
            cutoff = self.cfg.oneeuro_min_cutoff + self.cfg.oneeuro_beta * np.abs(self.dx[idx])
            self.x[idx] += self._alpha(cutoff, dt) * (z[idx] - self.x[idx])
            self.z_prev[idx] = z[idx]
        born = seen & ~self.clock.alive
        self.x[born] = self.z_prev[born] = z[born]
        self.dx[born] = 0.0
        self.clock.mark_seen(seen, s, t)
        return self.clock.output(self.x.copy(), seen, s)


class PassThrough:
    """No smoothing: the raw keypoints, as a smoother."""

    def __init__(self, cfg: SmoothConfig = SmoothConfig(), num_joints: int = NUM_KEYPOINTS) -> None:
        self.cfg = cfg
        self.num_joints = num_joints

    def reset(self) -> None:
        pass

    def update(self, keypoints: np.ndarray, scores: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(keypoints, np.float64).reshape(self.num_joints, 2).copy(),
                np.asarray(scores, np.float64).reshape(self.num_joints).copy())


_SMOOTHERS = {"kalman": KalmanSmoother, "oneeuro": OneEuroSmoother, "none": PassThrough}


def make_smoother(cfg: SmoothConfig, num_joints: int = NUM_KEYPOINTS) -> PoseSmoother:
    """The smoother named by ``cfg.method``."""
    if cfg.method not in _SMOOTHERS:
        raise ValueError(f"smoothing method must be one of {METHODS}, got {cfg.method!r}")
    return _SMOOTHERS[cfg.method](cfg, num_joints)


class BankOutput(NamedTuple):
    """Raw and smoothed poses of the people of one frame, in the order they were given."""

    raw_keypoints: np.ndarray      # (N, J, 2)
    raw_scores: np.ndarray         # (N, J)
    keypoints: np.ndarray          # (N, J, 2) smoothed (== raw when smoothing is off)
    scores: np.ndarray             # (N, J)


class SmoothingBank:
    """Smoothing for every tracked person; the method and its parameters can change at runtime.

    All people share one filter, each track id owning a slot of ``num_joints`` rows, so the cost of a frame does not
    grow with the number of people. With ``method == "none"`` the previously active filter keeps running in the
    background and the raw keypoints are returned, so switching smoothing back on is seamless. Changing a filter's
    parameters keeps its state; changing the method starts the new filter afresh. A track missing from a frame
    coasts like a missing joint; one not updated for more than ``max_predict_s`` loses its slot, so an id that
    comes back (or a re-born track) starts afresh.
    """

    def __init__(self, cfg: SmoothConfig = SmoothConfig(), num_joints: int = NUM_KEYPOINTS) -> None:
        self.num_joints = num_joints
        self._filter: KalmanSmoother | OneEuroSmoother | None = None    # None until a filtering method is set
        self._slots: dict[int, int] = {}            # track id -> slot
        self._last_update: dict[int, float] = {}
        self.cfg = cfg
        self.set_config(cfg)

    def set_config(self, cfg: SmoothConfig) -> None:
        if cfg.method not in METHODS:
            raise ValueError(f"smoothing method must be one of {METHODS}, got {cfg.method!r}")
        self.cfg = cfg
        if cfg.method == "none":
            return
        if self._filter is None or self._filter.cfg.method != cfg.method:
            self._filter = _SMOOTHERS[cfg.method](cfg, self.num_joints)
            self._slots.clear()
            self._last_update.clear()
        self._filter.cfg = cfg

    def reset(self, track_id: int | None = None) -> None:
        """Forget one track (re-born) or, with no id, all of them and the filter's clock (a seek or a loop)."""
        if track_id is None:
            self._slots.clear()
            self._last_update.clear()
            if self._filter is not None:
                self._filter.reset()
        else:
            self._slots.pop(track_id, None)
            self._last_update.pop(track_id, None)

    def update(self, track_ids: Sequence[int], keypoints: np.ndarray, scores: np.ndarray, t: float) -> BankOutput:
        """Smooth the people of one frame at time ``t`` (s). ``keypoints`` (N, J, 2), ``scores`` (N, J)."""
        ids = [int(tid) for tid in track_ids]
        if len(set(ids)) != len(ids):
            raise ValueError(f"track ids must be unique within a frame, got {ids}")
        n, j = len(ids), self.num_joints
        raw = np.asarray(keypoints, np.float64).reshape(n, j, 2)
        raw_scores = np.asarray(scores, np.float64).reshape(n, j)
        smoothed, smoothed_scores = raw.copy(), raw_scores.copy()
        if self._filter is not None:
            self._forget_stale(t)
            rows = (np.array([self._slot(tid) for tid in ids], int)[:, None] * j + np.arange(j)).reshape(-1)
            z = np.full((self._filter.num_joints, 2), np.nan)
            s = np.zeros(self._filter.num_joints)
            z[rows], s[rows] = raw.reshape(-1, 2), raw_scores.reshape(-1)
            out, out_scores = self._filter.update(z, s, t)
            self._last_update.update((tid, t) for tid in ids)
            if self.cfg.method != "none":
                smoothed, smoothed_scores = out[rows].reshape(n, j, 2), out_scores[rows].reshape(n, j)
        return BankOutput(raw, raw_scores, smoothed, smoothed_scores)

    def _slot(self, track_id: int) -> int:
        slot = self._slots.get(track_id)
        if slot is None:
            used = set(self._slots.values())
            slot = next(i for i in itertools.count() if i not in used)
            rows = slice(slot * self.num_joints, (slot + 1) * self.num_joints)
            if rows.stop > self._filter.num_joints:         # double the capacity: few reallocations in crowds
                self._filter.grow(max(rows.stop, 2 * self._filter.num_joints))
            self._filter.forget(rows)
            self._slots[track_id] = slot
        return slot

    def _forget_stale(self, t: float) -> None:
        limit = self._filter.cfg.max_predict_s
        for tid in [tid for tid, last in self._last_update.items() if t - last > limit]:
            self.reset(tid)
