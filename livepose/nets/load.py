"""A resolved weights reference + a runtime -> a network behind one small protocol (:class:`PoseNetwork`).

Keras (TensorFlow) and LiteRT networks answer the same calls, so the estimator, the exporter's accuracy check and
the benchmark never ask which one they hold. TensorFlow is imported only when the Keras runtime is chosen, or
once, when LiteRT first meets a checkpoint and converts it to the ``.npz`` its exporter reads (:func:`lite_weights`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import replace
from pathlib import Path

from livepose.config import LiteConfig
from livepose.nets.lite_cache import (CALIBRATED, PRECISIONS, choose_precision, converted_path, export_in_child,
                                      has_calibration_data, lite_dir, read_manifest)
from livepose.nets.lite_net import LiteNet
from livepose.nets.protocol import PoseNetwork
from livepose.nets.weights import WeightsRef, resolve

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "keras", "litert")
#: the batch sizes a Keras network traces a function for
KERAS_BATCH_SIZES = (1, 2, 4, 8)


def lite_weights(ref: WeightsRef, convert: bool = True) -> WeightsRef | None:
    """The ``.npz`` reference LiteRT exports from: ``ref`` itself, or the cached conversion of a checkpoint.

    A checkpoint (torch file, ``.weights.h5``, registry name) is converted once, with the same converter the Keras
    runtime uses, into ``<cache>/converted``; later starts find it there without TensorFlow. With ``convert=False``
    (what 'auto' asks) a checkpoint not converted yet gives None instead.
    """
    if ref.kind == "npz":
        return ref
    path = converted_path(ref)
    if not path.exists():
        if not convert:
            return None
        # the converter builds a Keras model (TensorFlow: seconds, hundreds of MB), so it is imported only here,
        # on a checkpoint's first LiteRT use, and never on the LiteRT path of later starts
        from livepose.nets.checkpoints.convert import save_npz

        log.info("converting %s to %s for LiteRT (once)", ref.spec, path)
        save_npz(ref.path if ref.path is not None else ref.spec, path)
    return resolve(path)


def resolve_runtime(runtime: str, ref: WeightsRef, input_size: tuple[int, int] | None = None,
                    precision: str = LiteConfig.precision) -> str:
    """'auto' -> 'litert' where a LiteRT export of these weights is already cached, else 'keras'.

    An export takes a minute or more on 2 cores: too long to start silently when a window opens, so 'auto'
    never exports (nor converts a checkpoint to ``.npz``); `livepose export` (or ``--runtime litert``) does it
    once, and 'auto' uses it from then on.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if runtime != "auto":
        return runtime
    if importlib.util.find_spec("ai_edge_litert") is None:
        return "keras"
    npz = lite_weights(ref, convert=False)
    variants = read_manifest(lite_dir(npz, input_size))["variants"] if npz is not None else {}
    if variants if precision == "auto" else precision in variants:
        return "litert"
    log.info("running on Keras; `livepose export --model %s --precision %s` once makes the LiteRT runtime "
             "available (about 3x faster on CPU)", ref.spec,
             ",".join(LiteConfig.auto_precisions) if precision == "auto" else precision)
    return "keras"


def load_lite(model: str | os.PathLike | WeightsRef, input_size: tuple[int, int] | None = None,
              precision: str = "auto", cfg: LiteConfig = LiteConfig()) -> LiteNet:
    """A LiteNet for any weights, exporting into the cache (in a child process) on first use.

    A checkpoint is converted to an ``.npz`` first (:func:`lite_weights`), once.
    """
    ref = resolve(model)
    if precision != "auto" and precision not in PRECISIONS:
        raise ValueError(f"precision must be 'auto' or one of {PRECISIONS}, got {precision!r}")
    ref = lite_weights(ref)
    out_dir = lite_dir(ref, input_size)
    manifest = read_manifest(out_dir)
    if precision == "auto":   # choose among what `livepose export` made; export a first pair only if none
        wanted = () if manifest["variants"] else cfg.auto_precisions
    else:
        wanted = (precision,)
    missing = [p for p in wanted if p not in manifest["variants"]]
    if precision == "auto" and set(CALIBRATED) & set(missing) and not has_calibration_data():
        log.warning("no real person crops to calibrate int8: choosing among float variants only")
        missing = [p for p in missing if p not in CALIBRATED]
    if missing:
        log.info("exporting %s to LiteRT %s (once; cached in %s)", ref.path.name, ",".join(missing), out_dir)
        manifest = export_in_child(ref.path, out_dir, input_size, replace(cfg, precisions=tuple(missing)))
    chosen = choose_precision(manifest, cfg.max_pck_loss) if precision == "auto" else precision
    variant = manifest["variants"][chosen]
    files = {int(b): out_dir / name for b, name in variant["files"].items()}
    stem = Path(manifest["weights"]).stem
    size = manifest["input_size"]
    log.info("LiteRT %s, batch sizes %s, accuracy %s", chosen, sorted(files), variant["accuracy"])
    return LiteNet(files, cfg.num_threads, name=f"{stem}@{size[0]}x{size[1]}-litert-{chosen}",
                   score_scale=ref.score_scale)


def load_keras(model: str | os.PathLike | WeightsRef, input_size: tuple[int, int] | None = None,
               batch_sizes: tuple[int, ...] = KERAS_BATCH_SIZES) -> PoseNetwork:
    """A :class:`livepose.nets.keras_net.PoseNet` for any kind of weights (``.npz``, Keras, torch, registry)."""
    # TensorFlow loads with these modules (seconds, hundreds of MB): imported only when Keras is chosen, so a
    # LiteRT run never pays for it.
    from livepose.nets.checkpoints.convert import load_model
    from livepose.nets.keras_net import PoseNet, model_from_npz

    ref = resolve(model)
    if ref.kind == "npz":
        size = tuple(input_size or ref.meta["input_size"])
        suffix = "" if size == tuple(ref.meta["input_size"]) else f"@{size[0]}x{size[1]}"
        return PoseNet(model_from_npz(ref, size), batch_sizes, name=ref.stem + suffix,
                       score_scale=ref.score_scale)
    model = load_model(ref.path if ref.path is not None else ref.spec, input_size=input_size)
    return PoseNet(model, batch_sizes, name=Path(ref.spec).stem)


def load_network(model: str | os.PathLike | WeightsRef = "default", input_size: tuple[int, int] | None = None,
                 batch_sizes: tuple[int, ...] = KERAS_BATCH_SIZES, runtime: str = "keras", precision: str = "auto",
                 lite_cfg: LiteConfig = LiteConfig()) -> PoseNetwork:
    """A ready network from a ``--model`` value (or its resolved reference) on the chosen runtime.

    ``input_size`` overrides the size the weights were trained at (the network is fully convolutional).
    ``runtime="litert"`` runs the exported network (``precision`` picks the variant, ``lite_cfg`` its threads;
    batch sizes are the exported ones); ``"auto"`` picks LiteRT where an export is cached.
    """
    ref = resolve(model)
    if resolve_runtime(runtime, ref, input_size, precision) == "litert":
        return load_lite(ref, input_size, precision, lite_cfg)
    return load_keras(ref, input_size, batch_sizes)
