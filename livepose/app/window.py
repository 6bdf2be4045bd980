"""The main window: video with skeletons and HUD, smoothing controls, jitter meter, sources, recording.

Threads: the pipeline runs on a PipelineWorker; live sources capture on their own thread; the UI thread only
paints and reacts. Every cross-thread call goes through LivePipeline (requests applied between frames),
ResultBridge (queued signals, latest result wins) or Recorder (one lock).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from pathlib import Path

from PyQt5.QtCore import QStandardPaths, Qt
from PyQt5.QtWidgets import (QAction, QActionGroup, QFileDialog, QHBoxLayout, QLabel, QMainWindow, QMenu,
                             QMessageBox, QPushButton, QSplitter, QStackedWidget, QVBoxLayout, QWidget)

from livepose.app.controls import PlaybackBar, SmoothingPanel
from livepose.app.jitter_panel import JitterPanel
from livepose.app.recorder import Recorder
from livepose.app.settings import AppSettings, save_settings
from livepose.app.stream import LivePipeline, RateMeter, ResultBridge
from livepose.app.video_view import VideoView, hud_lines
from livepose.config import AppConfig, RenderConfig, SmoothConfig, SourceConfig
from livepose.pipeline import PipelineWorker
from livepose.render import qimage_view
from livepose.sources import SourceError, list_cameras, open_source

log = logging.getLogger(__name__)

DETECTOR_MENU = {"multipose": "MoveNet MultiPose: everyone, overlapping people too (default)",
                 "blazepose": "BlazePose: fast, one prominent person (webcam)",
                 "nanodet": "NanoDet: groups and small people (COCO)",
                 "fused": "Both: the most people, the slowest"}
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.mpg *.mpeg);;All files (*)"
OPEN_HINT = "Open a video file (Ctrl+O) or an image folder (Ctrl+Shift+O), or drop one on this window."
NO_SOURCE = f"No camera found.\n{OPEN_HINT}"
STATUS_MESSAGES = {
    "stalled": "{name}: no frames ({detail}); waiting for it to come back",
    "reconnecting": "{name}: lost; reconnecting ({detail})",
    "failed": "{name}: lost for good ({detail}). Open another source.",
    "ended": "End of {name}. Press Play to watch it again.",
}


def save_folder(location: QStandardPaths.StandardLocation) -> Path:
    """Where recordings, exports and screenshots go: a ``livepose`` folder in the user's Videos or Pictures, or in
    the home folder where that one does not exist (Qt names ~/Videos even when it is missing, and a dialog opened
    on a missing folder saves into the current directory). Made if missing."""
    base = Path(QStandardPaths.writableLocation(location) or Path.home())
    folder = (base if base.is_dir() else Path.home()) / "livepose"
    with contextlib.suppress(OSError):      # unwritable: saving there says why
        folder.mkdir(exist_ok=True)
    return folder


class EmptyState(QWidget):
    """What the video area shows before any source: the reason, and the ways out."""

    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.label = QLabel(NO_SOURCE)
        self.label.setAlignment(Qt.AlignCenter)
        self.label.setWordWrap(True)
        buttons = QHBoxLayout()
        for text, slot in (("Open video file…", window.open_file_dialog),
                           ("Open image folder…", window.open_folder_dialog),
                           ("Look for cameras again", window.open_first_camera)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.label)
        layout.addLayout(buttons)
        layout.addStretch(1)


class MainWindow(QMainWindow):
    def __init__(self, pipeline, model_name: str, settings: AppSettings = AppSettings(),
                 app_cfg: AppConfig = AppConfig(), render_cfg: RenderConfig | None = None,
                 source_cfg: SourceConfig = SourceConfig(), settings_file: Path | None = None) -> None:
        super().__init__()
        self.setWindowTitle("livepose")
        self.setAcceptDrops(True)
        self.app_cfg = app_cfg
        self.source_cfg = dataclasses.replace(source_cfg, loop=settings.loop)
        self.settings = settings
        self.settings_file = settings_file
        self.model_name = model_name
        self.live = LivePipeline(pipeline)
        self.source = None
        self.worker: PipelineWorker | None = None
        render_cfg = dataclasses.replace(render_cfg or RenderConfig(), show_raw=settings.show_raw,
                                         hud_in_outputs=settings.hud_in_outputs)
        self.recorder = Recorder(render_cfg, hud=self._hud)
        self.bridge = ResultBridge(app_cfg, self.recorder)
        self.recorder.on_error = self.bridge.notice.emit
        self.display_fps = RateMeter(app_cfg.fps_window)
        self._last_refresh = 0.0
        self._shown_index = -1           # frame index of the last result shown: a lower one starts a new pass
        self._dropped_before = 0         # frames dropped before this pass of the file (the HUD counts this pass)

        self.view = VideoView(render_cfg)
        self.empty = EmptyState(self)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.view)
        self.playback = PlaybackBar(loop=settings.loop)
        self.smoothing = SmoothingPanel(pipeline.bank.cfg, settings.filter, settings.show_raw)
        self.jitter = JitterPanel(app_cfg, render_cfg.min_score, settings.joint)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.stack, 1)
        left_layout.addWidget(self.playback)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.smoothing)
        right_layout.addWidget(self.jitter, 1)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        self.setCentralWidget(splitter)
        self.source_label = QLabel("no source")
        self.statusBar().addPermanentWidget(self.source_label)
        self._build_menus()

        self.bridge.result_ready.connect(self._on_result, Qt.QueuedConnection)
        self.bridge.status_changed.connect(self._on_status, Qt.QueuedConnection)
        self.bridge.failed.connect(self._on_failed, Qt.QueuedConnection)
        self.bridge.notice.connect(self._notify, Qt.QueuedConnection)
        self.smoothing.config_changed.connect(self.set_smoothing)
        self.smoothing.show_raw_changed.connect(self.set_show_raw)
        self.jitter.joint_changed.connect(self._on_joint)
        self.playback.play_pause.connect(self.toggle_play)
        self.playback.step.connect(self.step)
        self.playback.seek.connect(self.seek)
        self.playback.loop_changed.connect(self.set_loop)

    # --- menus and shortcuts ---

    def _action(self, menu: QMenu, text: str, slot, shortcut: str | None = None, checkable: bool = False) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(shortcut)
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)    # shortcuts work while the menu bar is hidden or a side widget has focus
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        source = bar.addMenu("&Source")
        self._action(source, "Open video file…", self.open_file_dialog, "Ctrl+O")
        self._action(source, "Open image folder…", self.open_folder_dialog, "Ctrl+Shift+O")
        self.camera_menu = source.addMenu("Camera")
        self.camera_menu.aboutToShow.connect(self._fill_camera_menu)
        self.every_frame_action = self._action(source, "Process every frame (files: slower than real time on a "
                                               "slow machine, none dropped)", self.set_every_frame, checkable=True)
        self.every_frame_action.setChecked(self.source_cfg.mode == "every")
        source.addSeparator()
        self._action(source, "Quit", self.close, "Ctrl+Q")
        record = bar.addMenu("&Record")
        self.record_action = self._action(record, "Record video…", self._toggle_video, "Ctrl+R", checkable=True)
        self.export_action = self._action(record, "Export keypoints (JSONL/CSV/COCO)…", self._toggle_export, "Ctrl+E",
                                          checkable=True)
        self._action(record, "Save screenshot…", self._screenshot_dialog, "Ctrl+S")
        view = bar.addMenu("&View")
        self._action(view, "Smoothing on/off", self.smoothing.toggle, "K")
        self._action(view, "Show raw ghost", self.smoothing.show_raw_box.toggle, "G")
        self._action(view, "HUD in recordings and screenshots", self.set_hud_in_outputs,
                     checkable=True).setChecked(self.view.render_cfg.hud_in_outputs)
        self._action(view, "Play / pause", self.toggle_play, "Space")
        self._action(view, "Next frame", self.step, ".")
        detect = bar.addMenu("&Detector")
        group = QActionGroup(self)
        self.detector_actions = {}
        for name, text in DETECTOR_MENU.items():
            action = self._action(detect, text, lambda _=False, n=name: self.set_detector(n), checkable=True)
            action.setChecked(name == self.live.pipeline.cfg.detector)
            group.addAction(action)
            self.detector_actions[name] = action

    def _fill_camera_menu(self) -> None:
        self.camera_menu.clear()
        cameras = list_cameras(self.app_cfg.camera_probe, self.source_cfg)
        for index in cameras:
            self.camera_menu.addAction(f"Camera {index}", lambda i=index: self.open_source(str(i)))
        if not cameras:
            self.camera_menu.addAction("No camera found").setEnabled(False)

    # --- sources ---

    def start(self, spec: str | None = None) -> bool:
        """Open ``spec``, else the last source if it is a file that still exists, else the first camera."""
        if spec is not None:
            return self.open_source(spec)
        last = self.settings.last_source
        if last and not last.isdigit() and Path(last).exists() and self.open_source(last):
            return True
        return self.open_first_camera()

    def open_first_camera(self) -> bool:
        self.statusBar().showMessage("Looking for cameras…")
        cameras = list_cameras(self.app_cfg.camera_probe, self.source_cfg)
        if cameras and self.open_source(str(cameras[0])):
            return True
        self.empty.label.setText(NO_SOURCE)
        self.stack.setCurrentWidget(self.empty)
        self.statusBar().showMessage("No camera found", 10000)
        return False

    def open_source(self, spec: str) -> bool:
        """Replace the current source; on failure say why and keep the window usable."""
        self.stop_stream()
        try:
            source = open_source(spec, self.source_cfg, on_status=self.bridge.report_status)
        except (SourceError, OSError, ValueError) as exc:     # a missing file says so, not "No camera found"
            self.empty.label.setText(f"Could not open {spec}:\n{exc}\n\n{OPEN_HINT}")
            self.stack.setCurrentWidget(self.empty)
            self.statusBar().showMessage(f"Could not open {spec}: {exc}", 10000)
            log.warning("could not open %s: %s", spec, exc)
            return False
        self.source = source
        self.settings.last_source = spec
        self._save_settings()
        self.live.request_reset()
        self.jitter.reset()
        self.playback.set_source(source.frame_count if self.seekable else None)
        self.playback.set_paused(False)
        self.source_label.setText(source.name)
        self.view.result = None
        self.view.show_message("Waiting for the first frame…")
        self.stack.setCurrentWidget(self.view)
        self._start_worker()
        return True

    @property
    def seekable(self) -> bool:
        return self.source is not None and hasattr(self.source, "seek")

    def _start_worker(self) -> None:
        if self.worker is not None and self.worker.is_alive():
            return
        self.worker = PipelineWorker(self.source, self.live, self.bridge.push, self.bridge.report_error)
        self.worker.start()

    def stop_stream(self) -> None:
        """Close the source and join the pipeline thread (bounded by AppConfig.stop_timeout_s)."""
        self.recorder.stop()
        self._sync_record_actions()
        if self.source is not None:
            self.source.close()          # wakes a worker waiting in read()
        if self.worker is not None:
            self.worker.stop(self.app_cfg.stop_timeout_s)
            if self.worker.is_alive():
                log.warning("the pipeline thread is still busy after %.1f s; it ends after its current frame",
                            self.app_cfg.stop_timeout_s)
        self.source, self.worker = None, None
        self.bridge.clear()
        self.display_fps.reset()
        self._shown_index, self._dropped_before = -1, 0

    # --- file playback ---

    def toggle_play(self) -> None:
        if not self.seekable:
            return
        if self.worker is None or not self.worker.is_alive():   # ended: play again from the start
            self.source.seek(0)
            self.live.request_reset()
            self.source.resume()
            self._start_worker()
        elif self.source.paused:
            self.source.resume()
        else:
            self.source.pause()
        self.playback.set_paused(self.source.paused)

    def step(self) -> None:
        if self.seekable:
            self.source.step(1)
            self.playback.set_paused(True)
            self._start_worker()

    def seek(self, index: int) -> None:
        if self.seekable:
            self.source.seek(index)
            self.live.request_reset()
            self.jitter.reset()
            self._start_worker()

    def set_loop(self, on: bool) -> None:
        self.settings.loop = on
        self._set_source_cfg(loop=on)

    def set_every_frame(self, on: bool) -> None:
        """Process every frame of a file (a replay on a slow machine runs slower than real time) or keep to its
        frame rate, dropping what the pipeline cannot keep up with (as a camera does)."""
        self.settings.every_frame = on
        self._set_source_cfg(mode="every" if on else "realtime")
        self.statusBar().showMessage("files: every frame is processed" if on else
                                     "files: played at their frame rate; frames the pipeline misses are dropped", 5000)

    def _set_source_cfg(self, **changes) -> None:
        self.source_cfg = dataclasses.replace(self.source_cfg, **changes)
        if self.seekable:
            self.source.reconfigure(self.source_cfg)

    # --- smoothing and drawing ---

    def set_smoothing(self, cfg: SmoothConfig) -> None:
        """Applied by the pipeline thread before its next frame; no restart. The frame on screen is drawn again at
        once (raw or smoothed, the HUD naming the filter), so K shows its effect on a paused frame too."""
        self.live.set_smoothing(cfg)
        if not self.stream_running:
            self.live.apply_pending()
        self.settings.remember_smoothing(cfg)
        self.statusBar().showMessage(f"smoothing: {cfg.method}", 3000)
        if self.view.result is not None:
            self._show(self.view.result, new=False)

    def set_detector(self, name: str) -> None:
        """Swap the person detector live; the pipeline thread does it between frames."""
        self.live.set_detector(name)
        if not self.stream_running:
            self.live.apply_pending()
        self.detector_actions[name].setChecked(True)
        self.settings.detector = name
        self.statusBar().showMessage(f"detector: {name}", 3000)

    @property
    def stream_running(self) -> bool:
        return self.worker is not None and self.worker.is_alive()

    def set_show_raw(self, on: bool) -> None:
        self.settings.show_raw = on
        self._set_render_cfg(show_raw=on)

    def set_hud_in_outputs(self, on: bool) -> None:
        """Burn the HUD into recordings and screenshots, or save the video with skeletons only."""
        self.settings.hud_in_outputs = on
        self._set_render_cfg(hud_in_outputs=on)

    def _set_render_cfg(self, **changes) -> None:
        cfg = dataclasses.replace(self.view.render_cfg, **changes)
        self.view.render_cfg = cfg
        self.recorder.render_cfg = cfg
        self.view.update()

    def _on_joint(self, joint: int) -> None:
        self.settings.joint = joint

    # --- results (UI thread) ---

    def _dropped(self) -> int:
        """Frames dropped since the source opened: never shown (a newer result replaced them) or skipped by
        realtime replay or a camera."""
        return self.bridge.skipped + (self.source.stats.frames_dropped if self.source is not None else 0)

    def _hud(self, result) -> list[str]:
        return hud_lines(result, self.model_name, self.live.smooth_cfg, self.display_fps.rate,
                         self.bridge.pipeline_fps.rate, self._dropped() - self._dropped_before)

    def _show(self, result, new: bool = True) -> None:
        """Draw ``result`` with the smoothing in effect now (a result holds both the raw and the smoothed poses);
        ``new=False`` draws the frame on screen again and keeps its message."""
        smoothed = self.live.smooth_cfg.method != "none"
        if new:
            self.view.show_result(result, self._hud(result), smoothed)
        else:
            self.view.redraw(self._hud(result), smoothed)

    def _on_result(self) -> None:
        result, samples = self.bridge.take()
        if result is not None and result.frame.index < self._shown_index:
            # a loop (or a seek back) starts a new pass over the file: its dropped frames and its people (the
            # pipeline numbers them afresh) are counted from here, as on the first pass
            self._dropped_before = self._dropped()
            self.jitter.reset()
        for sample in samples:
            self.jitter.add(sample)
        if result is None:
            return
        self._shown_index = result.frame.index
        self.display_fps.tick()
        self._show(result)
        if self.seekable:
            self.playback.set_position(result.frame.index)
        now = time.monotonic()
        if now - self._last_refresh >= self.app_cfg.panel_refresh_s:
            self._last_refresh = now
            self.jitter.refresh()

    def _on_status(self, status: str, detail: str) -> None:
        if self.source is None or status == "closed":
            return
        text = STATUS_MESSAGES.get(status, "{name}: {status}").format(name=self.source.name, detail=detail,
                                                                       status=status)
        self.source_label.setText(f"{self.source.name}: {status}")
        if status in ("running", "paused"):
            self.view.show_message("")
            self.playback.set_paused(status == "paused")
        elif status == "ended" and self.source_cfg.loop:
            return
        else:
            self.view.show_message(text)
        self.statusBar().showMessage(text, 10000)

    def _on_failed(self, message: str) -> None:
        self.view.show_message(f"The stream stopped: {message}")
        self.statusBar().showMessage(f"The stream stopped: {message}")

    def _notify(self, message: str) -> None:
        self.statusBar().showMessage(message, 15000)
        self._sync_record_actions()

    # --- recording ---

    def start_recording(self, path: str | Path) -> None:
        fps = (self.source.native_fps if self.source is not None else None) or self.app_cfg.record_fps
        self.recorder.start_video(path, fps)
        self._sync_record_actions()
        self.statusBar().showMessage(f"recording to {path}")

    def start_export(self, path: str | Path) -> None:
        self.recorder.start_keypoints(path, self.source.name if self.source is not None else "live")
        self._sync_record_actions()
        self.statusBar().showMessage(f"exporting keypoints to {path}")

    def stop_recording(self, kind: str | None = None) -> list[Path]:
        done = self.recorder.stop(kind)
        self._sync_record_actions()
        if done:
            self.statusBar().showMessage("saved " + ", ".join(str(p) for p in done), 10000)
        return done

    def _sync_record_actions(self) -> None:
        self.record_action.setChecked(self.recorder.active("video"))
        self.export_action.setChecked(self.recorder.active("keypoints"))

    def _default_path(self, kind: str, suffix: str) -> str:
        """What the save dialog offers: a new name in save_folder(), which the status bar names."""
        folder = save_folder(QStandardPaths.PicturesLocation if kind == "screenshot" else QStandardPaths.MoviesLocation)
        self.statusBar().showMessage(f"saving in {folder}", 10000)
        return str(folder / f"livepose-{kind}-{time.strftime('%Y%m%d-%H%M%S')}{suffix}")

    def _ask_save(self, title: str, default: str, filters: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, title, default, filters)
        return path

    def _toggle_video(self) -> None:
        if self.recorder.active("video"):
            self.stop_recording("video")
            return
        path = self._ask_save("Record video", self._default_path("video", ".avi"),
                              "AVI, survives a crash (*.avi);;MP4 (*.mp4)")
        self._guarded(self.start_recording, path)

    def _toggle_export(self) -> None:
        if self.recorder.active("keypoints"):
            self.stop_recording("keypoints")
            return
        path = self._ask_save("Export keypoints", self._default_path("keypoints", ".jsonl"),
                              "JSON lines (*.jsonl);;CSV (*.csv);;COCO results (*.json)")
        self._guarded(self.start_export, path)

    def _screenshot_dialog(self) -> None:
        path = self._ask_save("Save screenshot", self._default_path("screenshot", ".png"), "PNG (*.png)")
        self._guarded(self.save_screenshot, path)

    def _guarded(self, start, path: str) -> None:
        if not path:
            self._sync_record_actions()
            return
        try:
            start(path)
        except (OSError, ValueError) as exc:
            self._sync_record_actions()
            QMessageBox.warning(self, "livepose", f"Could not write {path}:\n{exc}")

    def save_screenshot(self, path: str | Path) -> None:
        """The annotated frame at the source's resolution, as PNG."""
        image = self.view.annotated()
        if image is None:
            raise ValueError("no frame to save yet")
        if not qimage_view(image).save(str(path), "PNG"):
            raise OSError(f"Qt could not write the PNG {path}")
        self.statusBar().showMessage(f"saved {path}", 10000)

    # --- files by dialog or drop ---

    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video file", self._dialog_folder(), VIDEO_FILTER)
        if path:
            self.open_source(path)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open image folder", self._dialog_folder())
        if path:
            self.open_source(path)

    def _dialog_folder(self) -> str:
        last = Path(self.settings.last_source)
        return str(last.parent) if self.settings.last_source and last.exists() else str(Path.home())

    def dragEnterEvent(self, event) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_source(paths[0])

    # --- closing ---

    def _save_settings(self) -> None:
        self.settings.remember_smoothing(self.live.smooth_cfg)
        save_settings(self.settings, self.settings_file)

    def closeEvent(self, event) -> None:
        """Stop every thread and finish every file before the window goes."""
        self.stop_stream()
        self._save_settings()
        event.accept()
