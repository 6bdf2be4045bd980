"""The jitter meter: raw vs smoothed jitter and smoothing lag of one person, and a rolling plot of one joint.

It is fed every pipeline result (not only the ones the video shows), so accelerations are taken over
consecutive processed frames. It follows the lowest track id present and starts afresh when that person leaves.
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import pyqtSignal
from PyQt5.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLabel, QVBoxLayout, QWidget

from livepose.config import AppConfig
from livepose.metrics import RollingJitter, lag_frames
from livepose.skeleton import KEYPOINT_NAMES, track_colour

RAW_PEN = pg.mkPen((170, 170, 170), width=1)


class PoseSample(NamedTuple):
    """What the meter needs from one FrameResult (no image, so a backlog of them costs nothing)."""

    t: float
    track_ids: list[int]
    raw: np.ndarray              # (N, J, 2)
    raw_scores: np.ndarray       # (N, J)
    smoothed: np.ndarray         # (N, J, 2)
    smoothed_scores: np.ndarray  # (N, J)

    @classmethod
    def of(cls, result) -> "PoseSample":
        p = result.poses
        return cls(result.frame.source_time, list(result.track_ids), p.raw_keypoints, p.raw_scores, p.keypoints,
                   p.scores)


def _masked(points: np.ndarray, scores: np.ndarray, min_score: float) -> np.ndarray:
    out = np.array(points, np.float64)
    out[~(scores >= min_score)] = np.nan
    return out


def _fmt(value: float, unit: str, scale: float = 1.0, decimals: int = 2) -> str:
    return "–" if not math.isfinite(value) else f"{value * scale:.{decimals}f} {unit}"


class JitterPanel(QGroupBox):
    joint_changed = pyqtSignal(int)

    def __init__(self, cfg: AppConfig = AppConfig(), min_score: float = 0.3, joint: int = 9,
                 parent: QWidget | None = None) -> None:
        super().__init__("Jitter", parent)
        self.cfg = cfg
        self.min_score = min_score
        self.track_id: int | None = None
        self._raw_jitter = RollingJitter(cfg.jitter_window_s)
        self._smooth_jitter = RollingJitter(cfg.jitter_window_s)
        self._history: deque[tuple[float, np.ndarray, np.ndarray]] = deque()   # (t, raw (J,2), smoothed (J,2))
        self.joint_combo = QComboBox()
        self.joint_combo.addItems(KEYPOINT_NAMES)
        self.joint_combo.setCurrentIndex(joint)
        self.person_label = QLabel("–")
        self.raw_label = QLabel("–")
        self.smooth_label = QLabel("–")
        self.lag_label = QLabel("–")
        tip = "mean |x[t-1] - 2x[t] + x[t+1]| over the last {:.0f} s; % of the torso diagonal".format(
            cfg.jitter_window_s)
        for label in (self.raw_label, self.smooth_label):
            label.setToolTip(tip)
        self.plot = pg.GraphicsLayoutWidget()
        self.plot.setMinimumHeight(220)
        self._plots = [self.plot.addPlot(row=i, col=0) for i in range(2)]
        self._curves = []
        for plot, axis in zip(self._plots, "xy"):
            plot.setLabel("left", f"{axis} (px)")
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setXRange(-cfg.history_s, 0, padding=0)
            if axis == "x":
                plot.addLegend(offset=(5, 5))   # curves with a name join it
            else:
                plot.invertY(True)    # image y grows downwards
            self._curves.append((plot.plot(pen=RAW_PEN, name="raw"), plot.plot(pen=pg.mkPen("w", width=2),
                                                                                name="smoothed")))
        self._plots[1].setLabel("bottom", "time (s)")
        form = QFormLayout()
        form.addRow("Person", self.person_label)
        form.addRow("Raw jitter", self.raw_label)
        form.addRow("Smoothed jitter", self.smooth_label)
        form.addRow("Smoothing lag", self.lag_label)
        form.addRow("Plotted joint", self.joint_combo)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.plot, 1)
        self.joint_combo.currentIndexChanged.connect(self._on_joint)
        self.values: dict[str, float] = {}

    @property
    def joint(self) -> int:
        return self.joint_combo.currentIndex()

    def reset(self) -> None:
        self.track_id = None
        self._raw_jitter.reset()
        self._smooth_jitter.reset()
        self._history.clear()

    def add(self, sample: PoseSample) -> None:
        if not sample.track_ids:
            return
        if self.track_id not in sample.track_ids:
            self.reset()
            self.track_id = min(sample.track_ids)
        i = sample.track_ids.index(self.track_id)
        raw = _masked(sample.raw[i], sample.raw_scores[i], self.min_score)
        smoothed = _masked(sample.smoothed[i], sample.smoothed_scores[i], self.min_score)
        if self._history and sample.t <= self._history[-1][0]:
            self.reset()              # time went backwards: a seek or a loop
            self.track_id = sample.track_ids[i]
        self._raw_jitter.push(sample.t, raw)
        self._smooth_jitter.push(sample.t, smoothed)
        self._history.append((sample.t, raw, smoothed))
        while self._history[0][0] < sample.t - self.cfg.history_s:
            self._history.popleft()

    def refresh(self) -> None:
        """Redraw labels and curves from what was added (the window calls this at most every panel_refresh_s)."""
        raw_px, raw_norm = self._raw_jitter.value()
        sm_px, sm_norm = self._smooth_jitter.value()
        lag, lag_ms = self._lag()
        self.values = {"raw_px": raw_px, "raw_norm": raw_norm, "smoothed_px": sm_px, "smoothed_norm": sm_norm,
                       "lag_frames": lag, "lag_ms": lag_ms}
        self.person_label.setText("–" if self.track_id is None else f"#{self.track_id}")
        self.raw_label.setText(f"{_fmt(raw_px, 'px/f²')}   {_fmt(raw_norm, '%', 100.0)}")
        self.smooth_label.setText(f"{_fmt(sm_px, 'px/f²')}   {_fmt(sm_norm, '%', 100.0)}")
        self.lag_label.setText(f"{_fmt(lag, 'frames', decimals=1)}   {_fmt(lag_ms, 'ms', decimals=0)}")
        if not self._history:
            for raw_curve, smooth_curve in self._curves:
                raw_curve.setData([], [])
                smooth_curve.setData([], [])
            return
        t = np.array([h[0] for h in self._history])
        t = t - t[-1]
        colour = track_colour(self.track_id)
        for axis, (raw_curve, smooth_curve) in enumerate(self._curves):
            raw_curve.setData(t, np.array([h[1][self.joint, axis] for h in self._history]), connect="finite")
            smooth_curve.setData(t, np.array([h[2][self.joint, axis] for h in self._history]), connect="finite")
            smooth_curve.setPen(pg.mkPen(colour, width=2))

    def _lag(self) -> tuple[float, float]:
        """Frames (and ms) the smoothed trajectory trails the raw one, over the plotted history."""
        if len(self._history) < 2 * self.cfg.max_lag_frames + 3:
            return float("nan"), float("nan")
        raw = np.stack([h[1] for h in self._history])
        smoothed = np.stack([h[2] for h in self._history])
        if not (np.isfinite(raw).any() and np.isfinite(smoothed).any()):
            return float("nan"), float("nan")
        frames = lag_frames(raw, smoothed, max_lag=self.cfg.max_lag_frames)
        dt = float(np.median(np.diff([h[0] for h in self._history])))
        return frames, frames * dt * 1e3

    def _on_joint(self, joint: int) -> None:
        self.joint_changed.emit(joint)
        self.refresh()
