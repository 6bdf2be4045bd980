"""Skeleton overlay with QPainter: the app's video widget and annotated video files share this code.

Frames are wrapped as QImage without a copy and painted in place.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PyQt5 import sip
from PyQt5.QtCore import QPointF, QRectF, Qt
from PyQt5.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPen

from livepose.config import RenderConfig
from livepose.skeleton import LIMBS, track_colour


def qimage_view(image_rgb: np.ndarray) -> QImage:
    """A QImage sharing memory with a contiguous HxWx3 uint8 array (the array must outlive the QImage)."""
    if not image_rgb.flags["C_CONTIGUOUS"] or image_rgb.dtype != np.uint8 or image_rgb.ndim != 3:
        raise ValueError("qimage_view needs a C-contiguous HxWx3 uint8 array")
    h, w = image_rgb.shape[:2]
    # A buffer object selects QImage's const-data constructor, and painting on that detaches (paints a copy);
    # a raw pointer selects the writable one, so a QPainter draws into the array itself.
    data = sip.voidptr(image_rgb.ctypes.data) if image_rgb.flags.writeable else image_rgb.data
    return QImage(data, w, h, 3 * w, QImage.Format_RGB888)


def draw_skeleton(painter: QPainter, keypoints: np.ndarray, scores: np.ndarray, colour: QColor,
                  cfg: RenderConfig, opacity: float = 1.0) -> None:
    """Limbs between confident joints, joint dots whose radius grows with confidence."""
    painter.setOpacity(opacity)
    pen = QPen(colour, cfg.line_width)
    pen.setCapStyle(Qt.RoundCap)
    painter.setPen(pen)
    ok = scores >= cfg.min_score
    for a, b in LIMBS:
        if ok[a] and ok[b]:
            painter.drawLine(QPointF(*keypoints[a]), QPointF(*keypoints[b]))
    painter.setPen(Qt.NoPen)
    painter.setBrush(colour)
    for (x, y), s, good in zip(keypoints, scores, ok):
        if good:
            r = cfg.joint_radius * (0.5 + 0.5 * float(s))
            painter.drawEllipse(QPointF(x, y), r, r)
    painter.setBrush(Qt.NoBrush)
    painter.setOpacity(1.0)


def draw_people(painter: QPainter, people: Sequence, cfg: RenderConfig, smoothed: bool = True) -> None:
    """Every tracked person in their track colour; the raw pose as a faint ghost when ``cfg.show_raw``."""
    for person in people:
        colour = QColor(*track_colour(person.track_id))
        if cfg.show_raw and smoothed:
            draw_skeleton(painter, person.raw, person.raw_scores, QColor(255, 255, 255), cfg, cfg.raw_ghost_opacity)
        kps, sc = (person.smoothed, person.smoothed_scores) if smoothed else (person.raw, person.raw_scores)
        draw_skeleton(painter, kps, sc, colour, cfg)
        if cfg.show_ids:
            x, y, _, _ = person.box
            painter.setPen(QPen(colour))
            painter.setFont(QFont("Sans", cfg.label_font_pt, QFont.Bold))
            painter.drawText(QPointF(x, max(12.0, y - 4)), f"#{person.track_id}")


def people_count(n: int) -> str:
    """The HUDs' count: "1 person", "3 people"."""
    return f"{n} {'person' if n == 1 else 'people'}"


def _hud_font(px: int) -> QFont:
    font = QFont("Monospace")
    font.setStyleHint(QFont.TypeWriter)
    font.setPixelSize(px)
    return font


def hud_layout(lines: Sequence[str], cfg: RenderConfig, area: QRectF) -> tuple[QFont, QRectF, list[str]]:
    """Font, panel and text of the HUD in the top-left corner of ``area`` (a frame, or its place in a window).

    The text height is a share of the area's, so the HUD covers the same part of any frame; it shrinks until the
    widest line fits (not below ``hud_min_font_px``, where lines are elided instead), so nothing is cut off.
    """
    px = max(cfg.hud_min_font_px, int(area.height() * cfg.hud_font_share))
    widest = max((QFontMetricsF(_hud_font(px)).horizontalAdvance(s) for s in lines), default=0.0)
    room = area.width() - 2 * px                      # margins of px / 2 outside and inside the panel
    if widest > room:
        px = max(cfg.hud_min_font_px, int(px * room / widest))
    font = _hud_font(px)
    metrics = QFontMetricsF(font)
    room = area.width() - 2 * px
    shown = [metrics.elidedText(s, Qt.ElideRight, room) for s in lines]
    width = max((metrics.horizontalAdvance(s) for s in shown), default=0.0) + px
    height = metrics.lineSpacing() * len(shown) + px
    panel = QRectF(area.left() + px / 2, area.top() + px / 2, width, height) if shown else QRectF()
    return font, panel.intersected(area), shown


def draw_hud(painter: QPainter, lines: Sequence[str], cfg: RenderConfig, area: QRectF) -> None:
    """Status lines on a translucent panel in the top-left corner of ``area`` (see hud_layout)."""
    font, panel, shown = hud_layout(lines, cfg, area)
    if not shown:
        return
    painter.setFont(font)
    painter.fillRect(panel, QColor(0, 0, 0, 150))
    painter.setPen(QColor(255, 255, 255))
    metrics = QFontMetricsF(font)
    pad = font.pixelSize() / 2
    for i, line in enumerate(shown):
        painter.drawText(QPointF(panel.left() + pad, panel.top() + pad + metrics.ascent() + i * metrics.lineSpacing()),
                         line)


def annotate(image_rgb: np.ndarray, people: Sequence, cfg: RenderConfig = RenderConfig(), smoothed: bool = True,
             hud: Sequence[str] = ()) -> np.ndarray:
    """A copy of the frame with skeletons painted on it, and the ``hud`` lines when ``cfg.hud_in_outputs``."""
    out = np.ascontiguousarray(image_rgb).copy()
    img = qimage_view(out)
    painter = QPainter(img)
    painter.setRenderHint(QPainter.Antialiasing)
    draw_people(painter, people, cfg, smoothed)
    if cfg.hud_in_outputs:
        draw_hud(painter, hud, cfg, QRectF(img.rect()))
    painter.end()
    return out
