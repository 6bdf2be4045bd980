"""The pose network on LiteRT (XNNPACK): drop-in for :class:`livepose.model.PoseNet`, without TensorFlow.

Files come from :mod:`livepose.export_lite`, cached per weights file (by sha256) and input size, so only the
first run exports. The precision is chosen from the export's manifest: the fastest variant whose measured
PCK@0.2 loss against the Keras model is within ``LiteConfig.max_pck_loss``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from livepose.config import LiteConfig

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "keras", "litert")


@dataclass(frozen=True)
class Signature:
    """The part of a Keras model's interface that callers read (PoseEstimator: ``output_shape[-1]`` joints)."""

    output_shape: tuple


class LiteNet:
    """One LiteRT interpreter per exported fixed batch size; same ``__call__`` and attributes as PoseNet."""

    def __init__(self, files: dict[int, Path], num_threads: int = LiteConfig.num_threads, name: str = "",
                 score_scale: float = 1.0) -> None:
        from ai_edge_litert.interpreter import Interpreter

        if not files:
            raise ValueError("LiteNet needs at least one .tflite file")
        self.name = name or Path(next(iter(files.values()))).stem
        self.score_scale = score_scale
        self._runners: dict[int, tuple] = {}
        shapes = set()
        for batch, path in sorted(files.items()):
            interp = Interpreter(model_path=str(path), num_threads=num_threads)
            interp.allocate_tensors()
            inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
            if inp["shape"][0] != batch or inp["dtype"] != np.float32 or out["dtype"] != np.float32:
                raise ValueError(f"{path}: expected a float32 model with batch {batch}, got input "
                                 f"{tuple(inp['shape'])} {inp['dtype'].__name__}")
            shapes.add((tuple(inp["shape"][1:]), tuple(out["shape"][1:])))
            self._runners[batch] = (interp, inp["index"], out["index"], np.zeros(inp["shape"], np.float32))
        if len(shapes) != 1:
            raise ValueError(f"the .tflite files disagree on input/output shapes: {sorted(shapes)}")
        (in_shape, out_shape), = shapes
        self.batch_sizes = tuple(sorted(self._runners))
        self.input_size = (int(in_shape[0]), int(in_shape[1]))
        self.heatmap_size = (int(out_shape[0]), int(out_shape[1]))
        self.model = Signature((None, *map(int, out_shape)))

    def warmup(self) -> None:
        for n in self.batch_sizes:
            self(np.zeros((n, *self.input_size, 3), np.uint8))

    def __call__(self, crops_rgb_uint8: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB crops -> (N, J, h, w) float32 heatmaps (channels first, as decoded).

        N is split greedily into the exported batch sizes (largest first); only a remainder smaller than every
        exported size is padded.
        """
        crops = np.asarray(crops_rgb_uint8)
        if crops.ndim != 4 or crops.shape[1:] != (*self.input_size, 3):
            raise ValueError(f"{self.name}: crops must be (N, {self.input_size[0]}, {self.input_size[1]}, 3) RGB, "
                             f"got {crops.shape}")
        out = np.empty((len(crops), *self.model.output_shape[1:]), np.float32)
        start = 0
        while start < len(crops):
            left = len(crops) - start
            size = max((b for b in self.batch_sizes if b <= left), default=self.batch_sizes[0])
            n = min(size, left)
            interp, in_index, out_index, buf = self._runners[size]
            buf[:n] = crops[start:start + n]
            buf[n:] = 0.0
            interp.set_tensor(in_index, buf)
            interp.invoke()
            out[start:start + n] = interp.get_tensor(out_index)[:n]
            start += n
        return out.transpose(0, 3, 1, 2)


# --- cache and choice ------------------------------------------------------------------------------------------------

def weights_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_weights(spec: str) -> Path:
    """A shipped name or an ``.npz`` path -> the weights file (the LiteRT export starts from those)."""
    from livepose.zoo import SHIPPED, ModelNotFound, shipped_path

    path = shipped_path(spec) if spec in SHIPPED else Path(spec)
    if path.suffix != ".npz":
        raise ValueError(f"the LiteRT runtime exports from an .npz weights file, got {spec!r}; "
                         f"use --runtime keras for torch checkpoints and registry names")
    if not path.exists():
        raise ModelNotFound(f"weights file {path} does not exist")
    return path


def lite_dir(weights: Path, input_size: tuple[int, int] | None = None) -> Path:
    """<cache>/lite/<weights sha256, 16 hex>/<HxW>: one export per weights file and input size."""
    from livepose.model import read_npz_meta
    from livepose.weights.registry import cache_dir

    h, w = input_size or read_npz_meta(weights)["input_size"]
    return cache_dir() / "lite" / weights_sha256(weights)[:16] / f"{h}x{w}"


def choose_precision(manifest: dict, max_pck_loss: float = LiteConfig.max_pck_loss) -> str:
    """The fastest exported variant (best ms per crop over its batch sizes) within the PCK@0.2 budget.

    fp32 is always allowed: it is the Keras network up to float rounding.
    """
    ok = {}
    for precision, v in manifest.get("variants", {}).items():
        acc = v.get("accuracy")
        if precision == "fp32" or (acc is not None and -acc["pck_delta"] <= max_pck_loss):
            ok[precision] = min(v["ms_per_crop"].values())
    if not ok:
        raise ValueError("no exported variant is within the accuracy budget; run `livepose export` with fp32")
    return min(ok, key=ok.get)


def load_litenet(spec: str = "default", input_size: tuple[int, int] | None = None, precision: str = "auto",
                 cfg: LiteConfig = LiteConfig()) -> LiteNet:
    """A LiteNet for a shipped name or ``.npz`` file, exporting into the cache on first use."""
    from livepose.export_lite import PRECISIONS, default_data_root, export_in_child, has_calibration_data, read_manifest
    from livepose.model import read_npz_meta

    if precision != "auto" and precision not in PRECISIONS:
        raise ValueError(f"precision must be 'auto' or one of {PRECISIONS}, got {precision!r}")
    weights = resolve_weights(spec)
    out_dir = lite_dir(weights, input_size)
    manifest = read_manifest(out_dir)
    if precision == "auto":   # choose among what `livepose export` made; export a first pair only if none
        wanted = () if manifest["variants"] else cfg.auto_precisions
    else:
        wanted = (precision,)
    missing = [p for p in wanted if p not in manifest["variants"]]
    if precision == "auto" and "int8" in missing and not has_calibration_data(default_data_root()):
        log.warning("no real person crops at %s to calibrate int8: choosing among float variants only",
                    default_data_root())
        missing.remove("int8")
    if missing:
        log.info("exporting %s to LiteRT %s (once; cached in %s)", weights.name, ",".join(missing), out_dir)
        manifest = export_in_child(weights, out_dir, input_size, replace(cfg, precisions=tuple(missing)))
    chosen = choose_precision(manifest, cfg.max_pck_loss) if precision == "auto" else precision
    variant = manifest["variants"][chosen]
    files = {int(b): out_dir / name for b, name in variant["files"].items()}
    stem = Path(manifest["weights"]).stem
    size = manifest["input_size"]
    log.info("LiteRT %s, batch sizes %s, accuracy %s", chosen, sorted(files), json.dumps(variant["accuracy"]))
    return LiteNet(files, cfg.num_threads, name=f"{stem}@{size[0]}x{size[1]}-litert-{chosen}",
                   score_scale=read_npz_meta(weights).get("score_scale", 1.0))


def resolve_runtime(runtime: str, spec: str, input_size: tuple[int, int] | None = None,
                    precision: str = LiteConfig.precision) -> str:
    """'auto' -> 'litert' where a LiteRT export of these weights is already cached, else 'keras'.

    An export takes a minute or more on 2 cores: too long to start silently when a window opens, so 'auto'
    never exports; `livepose export` (or ``--runtime litert``) does it once, and 'auto' uses it from then on.
    """
    import importlib.util

    from livepose.export_lite import read_manifest
    from livepose.zoo import ModelNotFound

    if runtime != "auto":
        return runtime
    if importlib.util.find_spec("ai_edge_litert") is None:
        return "keras"
    try:
        variants = read_manifest(lite_dir(resolve_weights(spec), input_size))["variants"]
    except (ValueError, ModelNotFound):       # torch checkpoints, registry names: Keras only
        return "keras"
    if variants if precision == "auto" else precision in variants:
        return "litert"
    log.info("running on Keras; `livepose export --model %s --precision %s` once makes the LiteRT runtime "
             "available (about 3x faster on CPU)", spec,
             ",".join(LiteConfig.auto_precisions) if precision == "auto" else precision)
    return "keras"


def add_runtime_arguments(p: argparse.ArgumentParser) -> None:
    """--runtime / --precision, for every command that builds a network."""
    p.add_argument("--runtime", choices=RUNTIMES, default=LiteConfig.runtime,
                   help="auto (default): LiteRT when `livepose export` has made it for these weights, else "
                        "Keras; keras (TensorFlow); litert (exports once into the cache if needed, about 3x "
                        "faster on CPU)")
    from livepose.export_lite import PRECISIONS

    p.add_argument("--precision", default=LiteConfig.precision, choices=("auto", *PRECISIONS),
                   help=f"LiteRT variant (default {LiteConfig.precision}); auto: the fastest exported variant within "
                        f"1 point PCK@0.2 of Keras (exports and checks {','.join(LiteConfig.auto_precisions)} on "
                        "first use when none is exported)")
