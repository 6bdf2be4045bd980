"""The video widget: the frame (a QImage view over the numpy array, scaled while painting, never copied),
every tracked person's skeleton, and the HUD, all in one paintEvent.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PyQt5.QtCore import QPointF, QRectF, Qt
from PyQt5.QtGui import QColor, QPainter, QTransform
from PyQt5.QtWidgets import QSizePolicy, QWidget

from livepose.config import RenderConfig
from livepose.render import annotate, draw_hud, draw_people, qimage_view

BACKGROUND = QColor(24, 24, 24)


def hud_lines(result, model_name: str, display_fps: float, pipeline_fps: float, dropped: int) -> list[str]:
    """The status lines shown over the video (and burnt into recordings)."""
    t = result.timings_ms
    stages = "  ".join(f"{k} {t.get(k, 0.0):.0f}" for k in ("detect", "crop", "infer", "decode", "track", "smooth"))
    return [f"{model_name}  {len(result.track_ids)} people  filter {result.smooth_cfg.method}"
            + ("  [detector]" if result.detector_ran else ""),
            f"display {display_fps:4.1f} fps  pipeline {pipeline_fps:4.1f} fps  age {result.frame_age_ms:3.0f} ms"
            f"  dropped {dropped}",
            f"ms: {stages}  total {t.get('total', 0.0):.0f}"]


class VideoView(QWidget):
    """Paints the latest FrameResult scaled to fit (aspect kept); keeps a reference so the QImage's memory lives."""

    def __init__(self, render_cfg: RenderConfig = RenderConfig(), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.render_cfg = render_cfg
        self.result = None
        self.hud: Sequence[str] = ()
        self.message = ""
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setAttribute(Qt.WA_OpaquePaintEvent)

    def show_result(self, result, hud: Sequence[str] = ()) -> None:
        self.result, self.hud, self.message = result, list(hud), ""
        self.update()

    def show_message(self, text: str) -> None:
        """A centred line over the last frame (or the empty background): errors, end of file, reconnecting."""
        self.message = text
        self.update()

    def frame_transform(self) -> QTransform:
        """Frame pixels -> widget pixels (scale to fit, centred)."""
        if self.result is None:
            return QTransform()
        h, w = self.result.frame.image.shape[:2]
        scale = min(self.width() / w, self.height() / h)
        return QTransform.fromTranslate((self.width() - w * scale) / 2, (self.height() - h * scale) / 2).scale(
            scale, scale)

    def frame_to_widget(self, x: float, y: float) -> QPointF:
        return self.frame_transform().map(QPointF(x, y))

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        if self.result is not None:
            image = self.result.frame.image
            painter.save()
            painter.setTransform(self.frame_transform())
            painter.setRenderHints(QPainter.Antialiasing | QPainter.SmoothPixmapTransform)
            painter.drawImage(QRectF(0, 0, image.shape[1], image.shape[0]), qimage_view(image))
            draw_people(painter, self.result.people, self.render_cfg)
            painter.restore()
            draw_hud(painter, self.hud, self.render_cfg)
        if self.message:
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(self.rect().adjusted(20, 20, -20, -20), Qt.AlignCenter | Qt.TextWordWrap, self.message)
        painter.end()

    def annotated(self) -> np.ndarray | None:
        """The current frame at its own resolution with skeletons and HUD (screenshots); None before a frame."""
        if self.result is None:
            return None
        return annotate(self.result.frame.image, self.result.people, self.render_cfg, hud=self.hud)
