"""Command-line options that several commands share: the one "AxB" size parser and the runtime choice."""

from __future__ import annotations

import argparse

from livepose.config import LiteConfig
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
