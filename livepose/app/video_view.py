"""The video widget: the frame (a QImage view over the numpy array, scaled while painting, never copied),
every tracked person's skeleton, and the HUD, all in one paintEvent.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PyQt5.QtCore import QPointF, QRectF, Qt
from PyQt5.QtGui import QColor, QPainter, QTransform
from PyQt5.QtWidgets import QSizePolicy, QWidget

from livepose.config import RenderConfig, SmoothConfig
from livepose.render import annotate, draw_hud, draw_people, hud_layout, people_count, qimage_view

BACKGROUND = QColor(24, 24, 24)
MESSAGE_MARGIN = 20      # px between the centred message and the widget's edges (and the HUD)


def hud_lines(result, model_name: str, smoothing: SmoothConfig, display_fps: float, pipeline_fps: float,
              dropped: int) -> list[str]:
    """The status lines shown over the video (and burnt into recordings when asked).

    ``smoothing`` is the filter in effect now, which differs from the one the frame was smoothed with after K or a
    knob changed on a paused frame: the HUD names what is drawn, and says when the new settings show only from the
    next frame (the frame's own smoothed pose came from the old ones).
    """
    t = result.timings_ms
    stages = "  ".join(f"{k} {t.get(k, 0.0):.0f}" for k in ("detect", "crop", "infer", "decode", "track", "smooth"))
    pending = smoothing.method != "none" and smoothing != result.smooth_cfg
    return [f"{model_name}  {people_count(len(result.track_ids))}  filter {smoothing.method}"
            + (" (from the next frame)" if pending else "") + ("  [detector]" if result.detector_ran else ""),
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
        self.smoothed = True          # draw the smoothed poses (False: the raw ones, smoothing is off)
        self.message = ""
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setAttribute(Qt.WA_OpaquePaintEvent)

    def show_result(self, result, hud: Sequence[str] = (), smoothed: bool = True) -> None:
        self.result, self.message = result, ""
        self.redraw(hud, smoothed)

    def redraw(self, hud: Sequence[str], smoothed: bool) -> None:
        """The same frame with other HUD lines, raw or smoothed poses (smoothing switched on a paused frame)."""
        self.hud, self.smoothed = list(hud), smoothed
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

    def frame_rect(self) -> QRectF:
        """Where the frame is drawn in the widget (empty before a frame)."""
        if self.result is None:
            return QRectF()
        h, w = self.result.frame.image.shape[:2]
        return self.frame_transform().mapRect(QRectF(0, 0, w, h))

    def text_rects(self) -> tuple[QRectF, QRectF]:
        """The HUD panel (scaled to the frame as drawn, inside it) and the box of the centred message, which starts
        below the HUD so the two never overlap in a small window."""
        hud = hud_layout(self.hud, self.render_cfg, self.frame_rect())[1] if self.result is not None else QRectF()
        box = QRectF(self.rect()).adjusted(MESSAGE_MARGIN, MESSAGE_MARGIN, -MESSAGE_MARGIN, -MESSAGE_MARGIN)
        if not hud.isEmpty():
            box.setTop(max(box.top(), hud.bottom() + MESSAGE_MARGIN / 2))
        return hud, box

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        if self.result is not None:
            image = self.result.frame.image
            painter.save()
            painter.setTransform(self.frame_transform())
            painter.setRenderHints(QPainter.Antialiasing | QPainter.SmoothPixmapTransform)
            painter.drawImage(QRectF(0, 0, image.shape[1], image.shape[0]), qimage_view(image))
            draw_people(painter, self.result.people, self.render_cfg, self.smoothed)
            painter.restore()
            draw_hud(painter, self.hud, self.render_cfg, self.frame_rect())
        if self.message:
            painter.setFont(self.font())
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(self.text_rects()[1], Qt.AlignCenter | Qt.TextWordWrap, self.message)
        painter.end()

    def annotated(self) -> np.ndarray | None:
        """The current frame at its own resolution as drawn (screenshots), the HUD when ``hud_in_outputs``;
        None before a frame."""
        if self.result is None:
            return None
        return annotate(self.result.frame.image, self.result.people, self.render_cfg, self.smoothed, self.hud)
