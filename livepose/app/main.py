"""`livepose app` / `run_live.py`: open the desktop app on a camera, a video file, an image folder or a stream.

Options given on the command line win; the rest (model, detector, filter, knobs, last source) come from the settings
file of the previous run, then from the defaults in livepose.config.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal

from livepose.app.settings import AppSettings, load_settings, settings_path
from livepose.cli import setup_logging
from livepose.commands.options import add_model_arguments
from livepose.config import SourceConfig
from livepose.pipeline import load_pipeline

log = logging.getLogger(__name__)

DESCRIPTION = "Real-time pose tracking on a camera, video file, image folder or stream, with live smoothing controls."
SIGNAL_POLL_MS = 200   # how often Python gets the chance to see Ctrl+C while Qt's event loop runs


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", help="video file, image folder, camera index or /dev/videoN, or stream URL "
                   "(default: the last file opened, else the first camera)")
    p.add_argument("--camera", type=int, metavar="N", help="open camera N (same as SOURCE=N)")
    add_model_arguments(p)
    p.add_argument("--min-cutoff", type=float, help="One Euro: cutoff in Hz at rest")
    p.add_argument("--beta", type=float, help="One Euro: speed coefficient")
    p.add_argument("--show-raw", action="store_true", help="draw the raw keypoints as a ghost from the start")
    p.add_argument("--every-frame", action="store_true",
                   help="process every frame of a video file or folder, slower than real time on a slow machine, "
                        "instead of keeping to its frame rate and dropping frames (remembered; Source menu)")
    # None = "not given": the settings file fills these in
    p.set_defaults(model=None, detector=None, filter=None, process_noise=None, measurement_noise=None)
    p.epilog = (f"Keys: K smoothing on/off, G raw ghost, Space play/pause, . next frame, Ctrl+R record, "
                f"Ctrl+E export keypoints, Ctrl+S screenshot. Settings: {settings_path()}")


def merge_settings(args: argparse.Namespace, settings: AppSettings) -> argparse.Namespace:
    """Fill options not given on the command line from the settings, and remember the given ones."""
    args = argparse.Namespace(**vars(args))
    args.model = args.model or settings.model
    args.detector = args.detector or settings.detector
    if args.filter is None:
        args.filter = settings.filter if settings.smoothing else "none"
    for name in ("process_noise", "measurement_noise"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(settings, name))
    settings.model, settings.detector = args.model, args.detector
    settings.show_raw = settings.show_raw or args.show_raw
    settings.every_frame = settings.every_frame or args.every_frame
    settings.oneeuro_min_cutoff = settings.oneeuro_min_cutoff if args.min_cutoff is None else args.min_cutoff
    settings.oneeuro_beta = settings.oneeuro_beta if args.beta is None else args.beta
    return args


def initial_source(args: argparse.Namespace) -> str | None:
    if args.source is not None:
        return args.source
    return None if args.camera is None else str(args.camera)


def main(args: argparse.Namespace) -> int:
    # Qt modules load only after livepose.qt has prepared the environment (cv2's plugin path) and made the app
    from livepose.qt import ensure_app

    app = ensure_app()
    from PyQt5.QtCore import QTimer

    from livepose.app.window import MainWindow

    settings = load_settings()
    args = merge_settings(args, settings)
    log.info("loading model %s", args.model)
    loaded = load_pipeline(args, f"livepose app: cannot load the model {args.model!r}")
    if loaded is None:
        return 2
    pipeline, model_name = loaded
    pipeline.set_smoothing(dataclasses.replace(pipeline.bank.cfg, oneeuro_min_cutoff=settings.oneeuro_min_cutoff,
                                               oneeuro_beta=settings.oneeuro_beta))
    window = MainWindow(pipeline, model_name, settings,
                        source_cfg=SourceConfig(mode="every" if settings.every_frame else "realtime"))
    window.resize(1400, 860)
    window.show()
    QTimer.singleShot(0, lambda: window.start(initial_source(args)))
    signal.signal(signal.SIGINT, lambda *_: window.close())
    poll = QTimer()
    poll.timeout.connect(lambda: None)   # returns to Python now and then, so the SIGINT handler runs
    poll.start(SIGNAL_POLL_MS)
    return app.exec_()


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_live.py", description=DESCRIPTION)
    add_arguments(parser)
    parser.add_argument("--verbose", action="store_true", help="show the libraries' log lines too")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    return main(args)
