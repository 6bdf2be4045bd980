"""Command-line options that several commands share: the one "AxB" size parser, the runtime choice, and the model
options of every command that builds a pipeline (``livepose.pipeline.build_pipeline`` reads them)."""

from __future__ import annotations

import argparse

from livepose.config import LiteConfig, PipelineConfig, SmoothConfig
from livepose.detect import DETECTORS
from livepose.nets.lite_cache import PRECISIONS
from livepose.nets.load import RUNTIMES

#: the separator of a size written as two numbers, e.g. 256x192
SIZE_SEPARATOR = "x"


def size_pair(text: str) -> tuple[int, int]:
    """``"256x192"`` -> (256, 192) in the order written (HxW for network inputs, WxH for frame sizes).

    An ``argparse`` type: a malformed value is a usage error naming what was given.
    """
    try:
        first, second = (int(v) for v in text.lower().split(SIZE_SEPARATOR))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size must be two whole numbers such as 256x192, got {text!r}") from None
    if first <= 0 or second <= 0:
        raise argparse.ArgumentTypeError(f"a size must be positive, got {text!r}")
    return first, second


def add_runtime_arguments(p: argparse.ArgumentParser) -> None:
    """--runtime / --precision, for every command that builds a network."""
    p.add_argument("--runtime", choices=RUNTIMES, default=LiteConfig.runtime,
                   help="auto (default): LiteRT when `livepose export` has made it for these weights, else "
                        "Keras; keras (TensorFlow); litert (exports once into the cache if needed, about 3x "
                        "faster on CPU)")
    p.add_argument("--precision", default=LiteConfig.precision, choices=("auto", *PRECISIONS),
                   help=f"LiteRT variant (default {LiteConfig.precision}); auto: the fastest exported variant within "
                        f"1 point PCK@0.2 of Keras (exports and checks {','.join(LiteConfig.auto_precisions)} on "
                        "first use when none is exported)")


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that builds a pipeline (run, bench, app)."""
    p.add_argument("--model", default="default", help="'default' (shipped weights), a .npz file, a torch "
                   "checkpoint (.pth/.pth.tar) or a name from `livepose weights list`")
    p.add_argument("--input-size", type=size_pair,
                   help="network input HxW, e.g. 256x192, multiples of 32 (default: the weights' own size)")
    p.add_argument("--filter", choices=("kalman", "oneeuro", "none"), default=SmoothConfig.method,
                   help=f"temporal smoothing of the keypoints (default {SmoothConfig.method})")
    p.add_argument("--no-smooth", action="store_true", help="same as --filter none")
    p.add_argument("--process-noise", type=float, default=SmoothConfig.process_noise,
                   help="Kalman: white acceleration variance, (px/s^2)^2; higher follows faster "
                        f"(default {SmoothConfig.process_noise:g})")
    p.add_argument("--measurement-noise", type=float, default=SmoothConfig.measurement_noise,
                   help="Kalman: keypoint noise std in px at score 1; higher smooths more "
                        f"(default {SmoothConfig.measurement_noise:g})")
    p.add_argument("--flip-test", action="store_true", help="average with the mirrored crop (2x network cost)")
    p.add_argument("--max-people", type=int, default=None, help="cap on people per frame")
    p.add_argument("--detector", choices=DETECTORS, default=PipelineConfig.detector,
                   help="multipose (default): MoveNet MultiPose, every person with their pose, up to 6 a view "
                        "(a full view is searched again in halves); blazepose: fast, made for one prominent person; "
                        "nanodet: COCO boxes, small people; fused: NanoDet and tiled BlazePose")
    p.add_argument("--sync-detect", action="store_true",
                   help="run the periodic newcomer search on the frame it serves instead of beside the frames")
    add_runtime_arguments(p)
