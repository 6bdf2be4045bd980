"""`livepose` command line: one subcommand per job, each living in the module that does the job.

Subcommand modules are imported lazily so `livepose weights list` does not pay for TensorFlow.
Each module exposes ``add_arguments(parser)`` and ``main(args) -> int``. Logging is set up here, once for every
command: quiet (warnings of livepose) by default, everything with ``--verbose`` (the native libraries' start-up
lines too: see livepose.quiet, and Qt's XDG_RUNTIME_DIR warning). The stop signals (livepose.stopping) are
handled before any subcommand module is imported, so Ctrl-C or SIGTERM during the seconds TensorFlow takes to
import ends the process quietly (exit 130 or 143) instead of with a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

from livepose.stopping import EXIT_STATUS, on_stop_signals, stop_requested, stop_signals_as_ctrl_c

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("livepose.commands.run", "track people in a video, image folder, camera or stream; write video/JSONL"),
    "batch": ("livepose.commands.batch", "track an archive of videos on Ray (local or a cluster), resumable"),
    "weights": ("livepose.commands.weights", "list, fetch or import SimpleBaseline checkpoints"),
    "smooth": ("livepose.commands.smooth", "re-filter a recorded JSONL run offline (kalman, oneeuro, none)"),
    "bench": ("livepose.commands.bench", "measure speed per stage, against MediaPipe Pose in the same run"),
    "bench-app": ("livepose.app.bench", "measure the display fps of the real window replaying a video live"),
    "eval": ("livepose.commands.evaluate", "measure accuracy (OKS AP, PCK) and jitter against ground truth"),
    "synth": ("livepose.synthetic", "make a multi-person test video with exact GT from annotated stills"),
    "train": ("livepose.train", "train SimpleBaseline from a config (reproduces the shipped weights)"),
    "calibrate": ("livepose.commands.calibrate", "scale a weights file's keypoint confidences to match the default's"),
    "export": ("livepose.commands.export", "convert the Keras model to LiteRT fp32/fp16/int8"),
    "app": ("livepose.app.main", "open the desktop app (same as run_live.py)"),
    "cameras": ("livepose.commands.cameras", "list the cameras that open, with the mode each opens in"),
}


def setup_logging(verbose: bool) -> None:
    """Once per process, in the entry point: livepose's warnings only, or (``verbose``) every library's INFO too."""
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")     # read when TensorFlow loads, after this
        _name_qt_runtime_dir()
        logging.basicConfig(level=logging.WARNING, format="%(message)s")


def _name_qt_runtime_dir() -> None:
    """Qt on Linux warns "QStandardPaths: XDG_RUNTIME_DIR not set" (containers, ssh, cron) and then uses a private
    temporary folder: name one like it first, when it is ours and private as Qt requires."""
    if "XDG_RUNTIME_DIR" in os.environ or not sys.platform.startswith("linux"):
        return
    runtime = Path(tempfile.gettempdir()) / f"runtime-{os.getuid()}"
    with contextlib.suppress(OSError):
        runtime.mkdir(mode=0o700, exist_ok=True)
        st = runtime.stat()
        if st.st_uid == os.getuid() and not st.st_mode & 0o077:
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with stop_signals_as_ctrl_c():
        try:
            return _main(argv)
        except KeyboardInterrupt as exc:   # only before a command took over (commands handle their own)
            signum = getattr(exc, "signum", signal.SIGINT)
            print(f"livepose: stopped by {signal.Signals(signum).name}", file=sys.stderr)
            return EXIT_STATUS[signum]


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="livepose", description="Real-time human pose tracking.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] not in COMMANDS:
        parser.print_help() if not argv or argv[0] in ("-h", "--help") else parser.parse_args(argv)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    setup_logging("--verbose" in argv[1:])
    module = _import_command(COMMANDS[argv[0]][0])
    cmd_parser = argparse.ArgumentParser(prog=f"livepose {argv[0]}", description=COMMANDS[argv[0]][1])
    module.add_arguments(cmd_parser)
    cmd_parser.add_argument("--verbose", action="store_true", help="show the libraries' log lines too")
    args = cmd_parser.parse_args(argv[1:])
    code = int(module.main(args) or 0)
    if stop_requested() and code == EXIT_STATUS[signal.SIGINT]:
        return EXIT_STATUS[stop_requested()]  # stopped as for Ctrl-C; report the signal it was
    return code


def _import_command(name: str):
    """Import a command's module; a stop signal meanwhile ends the process at once, quietly.

    Nothing is open yet to finalise, and raising from the handler is not safe here: a KeyboardInterrupt that lands
    inside a C extension's import (numpy's, under cv2) is printed by it and turned into an ImportError.
    """
    with on_stop_signals(_exit_stopped):
        return importlib.import_module(name)


def _exit_stopped(signum: int, frame) -> None:
    print(f"livepose: stopped by {signal.Signals(signum).name}", file=sys.stderr, flush=True)
    os._exit(EXIT_STATUS[signum])
