"""The one place that starts Qt, so PyQt5 survives OpenCV's bundled Qt plugins.

mediapipe pulls in ``opencv-contrib-python`` (a GUI build); ``import cv2`` then points
``QT_QPA_PLATFORM_PLUGIN_PATH`` at cv2's own Qt plugins, and PyQt5 aborts under a real X display
("Could not load the Qt platform plugin xcb"). Importing cv2 first and removing that variable fixes it.
"""

from __future__ import annotations

import os
import sys

import cv2  # noqa: F401  (imported first on purpose: it sets the variable we remove below)

_app = None


def ensure_app(headless: bool | None = None):
    """The process's QApplication, created once. ``headless`` (default: no $DISPLAY) uses the offscreen platform."""
    os.environ.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    if headless is None:
        headless = not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")
    if headless:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt5.QtWidgets import QApplication

    global _app
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
    _app = app  # Qt must not be garbage-collected while painters and widgets use it
    return app
