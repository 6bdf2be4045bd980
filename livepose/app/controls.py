"""Side-panel controls: the smoothing switch, method and knobs; the file playback bar.

Widgets only emit what the user asked for; the window decides how it reaches the pipeline thread.
"""

from __future__ import annotations

import dataclasses

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                             QPushButton, QSlider, QStyle, QWidget)

from livepose.config import SmoothConfig

METHOD_LABELS = {"kalman": "Kalman", "oneeuro": "One Euro", "none": "none"}


class LogSpinBox(QDoubleSpinBox):
    """A spin box whose arrows multiply: knobs such as the Kalman process noise span several decades."""

    def __init__(self, factor: float, lo: float, hi: float, decimals: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.factor = factor
        self.setRange(lo, hi)
        self.setDecimals(decimals)
        self.setKeyboardTracking(False)   # typing applies on Enter/focus-out, not at every digit

    def stepBy(self, steps: int) -> None:
        self.setValue(self.value() * self.factor ** steps)


class SmoothingPanel(QGroupBox):
    """On/off (K), Kalman / One Euro / none, the active filter's two knobs, and the raw-ghost switch."""

    config_changed = pyqtSignal(object)   # SmoothConfig
    show_raw_changed = pyqtSignal(bool)

    def __init__(self, cfg: SmoothConfig, last_filter: str = "kalman", show_raw: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__("Smoothing", parent)
        self._base = cfg
        self._last_filter = cfg.method if cfg.method != "none" else last_filter
        self.enabled_box = QCheckBox("Smoothing on  (K)")
        self.method_combo = QComboBox()
        for method, label in METHOD_LABELS.items():
            self.method_combo.addItem(label, method)
        self.process_noise = LogSpinBox(2.0, 1.0, 1e10, 0)
        self.process_noise.setToolTip("Kalman: variance of the white acceleration, (px/s²)²; higher follows faster")
        self.measurement_noise = LogSpinBox(1.25, 0.05, 200.0, 2)
        self.measurement_noise.setToolTip("Kalman: keypoint noise std in px at confidence 1; higher smooths more")
        self.min_cutoff = LogSpinBox(1.25, 0.001, 100.0, 3)
        self.min_cutoff.setToolTip("One Euro: cutoff in Hz at rest; lower smooths more")
        self.beta = LogSpinBox(1.25, 0.0, 10.0, 4)
        self.beta.setToolTip("One Euro: speed coefficient; higher follows faster")
        self.show_raw_box = QCheckBox("Show raw keypoints as a ghost  (G)")
        form = QFormLayout(self)
        form.addRow(self.enabled_box)
        form.addRow("Filter", self.method_combo)
        form.addRow("Process noise (px²/s⁴)", self.process_noise)
        form.addRow("Measurement noise (px)", self.measurement_noise)
        form.addRow("Min cutoff (Hz)", self.min_cutoff)
        form.addRow("Beta", self.beta)
        form.addRow(self.show_raw_box)
        self._set_widgets(cfg, show_raw)
        self.enabled_box.toggled.connect(self._on_enabled)
        self.method_combo.currentIndexChanged.connect(self._emit)
        for box in (self.process_noise, self.measurement_noise, self.min_cutoff, self.beta):
            box.valueChanged.connect(self._emit)
        self.show_raw_box.toggled.connect(self.show_raw_changed)

    @property
    def last_filter(self) -> str:
        return self._last_filter

    def config(self) -> SmoothConfig:
        return dataclasses.replace(self._base, method=self.method_combo.currentData(),
                                   process_noise=self.process_noise.value(),
                                   measurement_noise=self.measurement_noise.value(),
                                   oneeuro_min_cutoff=self.min_cutoff.value(), oneeuro_beta=self.beta.value())

    def toggle(self) -> None:
        """The K key: smoothing off, or back on with the filter that was on before."""
        self.enabled_box.toggle()

    def _set_widgets(self, cfg: SmoothConfig, show_raw: bool) -> None:
        self.method_combo.setCurrentIndex(self.method_combo.findData(cfg.method))
        self.enabled_box.setChecked(cfg.method != "none")
        self.process_noise.setValue(cfg.process_noise)
        self.measurement_noise.setValue(cfg.measurement_noise)
        self.min_cutoff.setValue(cfg.oneeuro_min_cutoff)
        self.beta.setValue(cfg.oneeuro_beta)
        self.show_raw_box.setChecked(show_raw)
        self._enable_knobs(cfg.method)

    def _enable_knobs(self, method: str) -> None:
        for box in (self.process_noise, self.measurement_noise):
            box.setEnabled(method == "kalman")
        for box in (self.min_cutoff, self.beta):
            box.setEnabled(method == "oneeuro")

    def _on_enabled(self, on: bool) -> None:
        self.method_combo.setCurrentIndex(self.method_combo.findData(self._last_filter if on else "none"))

    def _emit(self) -> None:
        cfg = self.config()
        if cfg.method != "none":
            self._last_filter = cfg.method
        self.enabled_box.blockSignals(True)
        self.enabled_box.setChecked(cfg.method != "none")
        self.enabled_box.blockSignals(False)
        self._enable_knobs(cfg.method)
        self.config_changed.emit(cfg)


class PlaybackBar(QWidget):
    """Play/pause, step, seek and loop for files; disabled for live sources."""

    play_pause = pyqtSignal()
    step = pyqtSignal()
    seek = pyqtSignal(int)
    loop_changed = pyqtSignal(bool)

    def __init__(self, loop: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        style = self.style()
        self._icons = (style.standardIcon(QStyle.SP_MediaPlay), style.standardIcon(QStyle.SP_MediaPause))
        self.play_button = QPushButton(self._icons[1], "")
        self.play_button.setToolTip("Play / pause  (Space)")
        self.step_button = QPushButton(style.standardIcon(QStyle.SP_MediaSkipForward), "")
        self.step_button.setToolTip("Next frame  (.)")
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setTracking(False)    # seek once on release, not for every pixel dragged
        self.position_label = QLabel("")
        self.loop_box = QCheckBox("Loop")
        self.loop_box.setChecked(loop)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        for w in (self.play_button, self.step_button):
            row.addWidget(w)
        row.addWidget(self.slider, 1)
        row.addWidget(self.position_label)
        row.addWidget(self.loop_box)
        self.play_button.clicked.connect(self.play_pause)
        self.step_button.clicked.connect(self.step)
        self.slider.valueChanged.connect(self.seek)
        self.loop_box.toggled.connect(self.loop_changed)
        self.set_source(None)

    def set_source(self, frame_count: int | None) -> None:
        """A file with ``frame_count`` frames, or None for a live source (or none) where only nothing applies."""
        seekable = bool(frame_count)
        for w in (self.play_button, self.step_button, self.slider, self.loop_box):
            w.setEnabled(seekable)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, (frame_count or 1) - 1))
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self.position_label.setText("" if not seekable else f"0 / {frame_count}")

    def set_position(self, index: int) -> None:
        if self.slider.isSliderDown():
            return
        self.slider.blockSignals(True)
        self.slider.setValue(index)
        self.slider.blockSignals(False)
        self.position_label.setText(f"{index + 1} / {self.slider.maximum() + 1}")

    def set_paused(self, paused: bool) -> None:
        self.play_button.setIcon(self._icons[0] if paused else self._icons[1])
