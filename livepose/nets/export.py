"""The Keras SimpleBaseline as LiteRT flatbuffers, one per precision and fixed batch size (`livepose export`).

Why LiteRT: on these CPUs it runs the network faster than TensorFlow (docs: ../shared/notes/inference-speed.md).
Five variants: float32; float16 weights; "dynamic", int8 weights with activations quantised on the fly per batch (no
calibration; XNNPACK's qd8 kernels; against float32 it measured both faster and slower here); full-integer int8
calibrated on real person crops (the fastest, and the furthest from Keras); and "int8_hires_float", the same int8
network with its high-resolution ops in float32 (below). A fixed batch dimension halves the time against a dynamic
one, so each batch size gets its own file. The ImageNet normalisation is part of the graph: the runtime feeds raw
pixels, and the int8 input quantisation (calibrated on [0, 255]) is then exact.

Why float at high resolution: TensorFlow's ``QuantizationDebugger`` puts full int8's largest per-layer errors at
the input end of the MobileNetV2 models (docs/measurements.md, LiteRT variants): the normalisation is four
elementwise ops (ImageNet's, then MoveNet's rescaling), each rounding to int8 again (the first at 1.08 pixel levels
a step), and the first convolutions err by up to 1.7 quantisation steps (rounding alone: 0.29). Every op whose
output is at least ``LiteConfig.float_height_share`` of the input's height stays float: the normalisation, the stem
and the first stage, and at the other end the heatmaps' depth_to_space and final 1x1 convolution (the heatmaps are
a quarter of the input's height), so the heatmaps come out of a float layer. These ops work on few channels, about
a tenth of the multiply-adds; the rest is int8.

Every exported variant is compared with the Keras model on real people with ground-truth boxes (images_gt and
the JHMDB clip) and timed; the figures go into ``manifest.json`` beside the files, from which
:mod:`livepose.nets.lite_cache` picks a variant. TensorFlow is imported at the top: exporting is Keras work.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from livepose.atomic import write_atomic
from livepose.config import CropConfig, LiteConfig
from livepose.crop import box_to_region, warp_crops
from livepose.data import data_root as default_data_root
from livepose.data import load_pose17, read_rgb
from livepose.estimate import PoseEstimator
from livepose.metrics import pck
from livepose.nets.keras_net import IMAGENET_MEAN, IMAGENET_STD
from livepose.nets.lite_cache import CALIBRATED, CALIBRATION_POOL, MANIFEST, PRECISIONS, read_manifest
from livepose.nets.lite_net import Interpreter, LiteNet
from livepose.nets.load import lite_weights, load_keras
from livepose.nets.protocol import PoseNetwork
from livepose.nets.weights import WeightsRef, resolve

log = logging.getLogger(__name__)

#: per output phase p (row or column parity): the transposed-conv kernel taps used, first tap first, and the
#: (before, after) zero padding. Output 2m reads inputs m-1, m (taps 3, 1); output 2m+1 reads m, m+1 (taps 2, 0).
PHASE_TAPS = ((3, 1), (2, 0))
PHASE_PAD = ((1, 0), (0, 1))
PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))  # depth_to_space channel-block order


class CalibrationDataMissing(FileNotFoundError):
    pass


# --- graph -------------------------------------------------------------------------------------------------------

def phase_kernels(kernel: np.ndarray) -> list[np.ndarray]:
    """A Conv2DTranspose 4x4 stride-2 kernel (4, 4, out, in) -> four 2x2 Conv2D kernels (2, 2, in, out), PHASES order."""
    if kernel.shape[:2] != (4, 4):
        raise ValueError(f"phase decomposition needs a 4x4 transposed-convolution kernel, got {kernel.shape}")
    k = kernel.transpose(0, 1, 3, 2)
    return [k[np.ix_(PHASE_TAPS[py], PHASE_TAPS[px])] for py, px in PHASES]


def phase_deconv(x, kernel: np.ndarray, scale: np.ndarray | None = None, shift: np.ndarray | None = None,
                 relu: bool = False):
    """Conv2DTranspose(4x4, stride 2, padding 'same') [+ per-channel affine + ReLU] as four 2x2 convolutions.

    Each output phase is an ordinary convolution of the input with its own zero padding; depth_to_space
    interleaves them. Same multiply-adds and weights as the transposed convolution, and LiteRT runs it faster.
    A following BatchNorm folds into ``scale``/``shift`` (per channel, so it commutes with depth_to_space).
    """
    outs = []
    for (py, px), k in zip(PHASES, phase_kernels(kernel)):
        if scale is not None:
            k = k * scale
        y = tf.nn.conv2d(tf.pad(x, [[0, 0], PHASE_PAD[py], PHASE_PAD[px], [0, 0]]), k, 1, "VALID")
        if shift is not None:
            y = y + shift
        outs.append(tf.nn.relu(y) if relu else y)
    return tf.nn.depth_to_space(tf.concat(outs, axis=-1), 2)


def lite_forward(model, phase: bool) -> Callable:
    """Raw RGB pixels (float, 0-255) -> NHWC heatmaps: normalisation + network, deconvs optionally phase-split."""
    keras = tf.keras
    mean, inv_std = tf.constant(IMAGENET_MEAN), tf.constant(1.0 / IMAGENET_STD)
    if not phase:
        return lambda images: model((images - mean) * inv_std, training=False)
    deconvs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    if not deconvs:
        raise ValueError(f"{model.name} has no Conv2DTranspose layer to split into phases")
    backbone = keras.Model(model.input, deconvs[0].input)
    head = []
    for layer in deconvs:
        index = int(layer.name.rsplit("_", 1)[1])
        bn = model.get_layer(f"deconv_layers_{index + 1}")
        gamma, beta, moving_mean, moving_var = bn.get_weights()
        scale = gamma / np.sqrt(moving_var + bn.epsilon)
        head.append((layer.get_weights()[0], scale, beta - moving_mean * scale))
    final = model.get_layer("final_layer")

    def forward(images):
        x = backbone((images - mean) * inv_std, training=False)
        for kernel, scale, shift in head:
            x = phase_deconv(x, kernel, scale, shift, relu=True)
        return final(x)

    return forward


def convert(model, batch_size: int, precision: str, calibration: np.ndarray | None = None,
            phase: bool = True, float_height_share: float = LiteConfig.float_height_share) -> bytes:
    """One .tflite flatbuffer with a fixed batch dimension; float32 input (raw pixels) and output either way."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    h, w = model.input_shape[1:3]
    spec = tf.TensorSpec((batch_size, h, w, 3), tf.float32, name="image")
    fn = tf.function(lite_forward(model, phase), input_signature=[spec])
    # Weights frozen to constants: the int8 calibrator cannot read resource variables (READ_VARIABLE fails).
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]   # no representative data: dynamic-range int8
    elif precision in CALIBRATED:
        if calibration is None or len(calibration) < batch_size:
            raise CalibrationDataMissing(f"{precision} export needs at least {batch_size} real calibration crops")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _calibration_batches(calibration, batch_size)
        if precision == "int8_hires_float":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
            return _float_high_res(converter, h * float_height_share)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def _float_high_res(converter, min_height: float) -> bytes:
    """Calibrate ``converter`` and quantise every op to int8 but those whose output is at least ``min_height`` high.

    TensorFlow's ``QuantizationDebugger`` is the public way to quantise with a denylist: it calibrates once (and
    builds a numeric-verification model for each set of options, unused here: seconds against the calibration's
    tens); ``get_nondebug_quantized_model`` then quantises the calibrated model with the denylisted nodes (ops, by
    output tensor name) left in float. The op list comes from the interpreter's ``_get_ops_details``, private, as
    the debugger itself reads it: no public call lists a model's ops with their outputs.
    """
    with warnings.catch_warnings():   # the verification models run on tf.lite.Interpreter, deprecated, which says so
        warnings.filterwarnings("ignore", r"\s*Warning: tf.lite.Interpreter is deprecated", UserWarning)
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter)
        calibrated = Interpreter(model_content=debugger.calibrated_model)
        tensors = {t["index"]: t for t in calibrated.get_tensor_details()}
        high_res = [tensors[op["outputs"][0]]["name"] for op in calibrated._get_ops_details()
                    if len(shape := tensors[op["outputs"][0]]["shape"]) == 4 and shape[1] >= min_height]
        if not high_res:
            raise ValueError(f"no op's output is {min_height:.0f} px high or more: nothing to keep in float")
        debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=high_res)
        return debugger.get_nondebug_quantized_model()


def _calibration_batches(crops: np.ndarray, batch_size: int) -> Iterator[list[np.ndarray]]:
    for start in range(0, len(crops) - batch_size + 1, batch_size):
        yield [crops[start:start + batch_size].astype(np.float32)]


# --- real data -----------------------------------------------------------------------------------------------------

def _require(path: Path) -> Path:
    if not path.exists():
        raise CalibrationDataMissing(f"{path} not found: real person images are needed (../shared/data, or set "
                                     f"LIVEPOSE_SHARED_DATA)")
    return path


def calibration_crops(data_root: Path, input_size: tuple[int, int], count: int) -> np.ndarray:
    """``count`` uint8 person crops from LSPet, spread evenly over the pool (disjoint from the evaluation set)."""
    people = load_pose17(_require(Path(data_root) / CALIBRATION_POOL))
    picks = np.linspace(0, len(people) - 1, count).round().astype(int)
    crops = np.empty((count, *input_size, 3), np.uint8)
    for i, k in enumerate(picks):
        path, _, box = people[k]
        centres, sizes = box_to_region(box[None])
        warp_crops(read_rgb(path), centres, sizes, input_size, out=crops[i:i + 1])
    return crops


def evaluation_people(data_root: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(RGB image, GT boxes (N, 4), GT keypoints (N, 17, 3)) per image: images_gt and the JHMDB GT clip."""
    files = [Path(data_root) / "images_gt" / "annotations.pose17.json",
             Path(data_root) / "sequences_gt" / "jhmdb_goal_keeping_tips_catch_fr_med_2" / "gt.pose17.json"]
    by_image: dict[Path, list[tuple[np.ndarray, np.ndarray]]] = {}
    for f in files:
        for path, kps, box in load_pose17(_require(f)):
            by_image.setdefault(path, []).append((box, kps))
    return [(read_rgb(path), np.stack([b for b, _ in ppl]), np.stack([k for _, k in ppl]))
            for path, ppl in by_image.items()]


# --- accuracy and speed --------------------------------------------------------------------------------------------

def predict(net: PoseNetwork, people: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
            crop_cfg: CropConfig = CropConfig()) -> np.ndarray:
    """Keypoints (image px) of every GT person, from its GT box, through the ordinary PoseEstimator."""
    estimator = PoseEstimator(net, crop_cfg)
    return np.concatenate([estimator(image, boxes).keypoints for image, boxes, _ in people])


def compare(reference: np.ndarray, candidate: np.ndarray, people: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
            heatmap_width: int, crop_cfg: CropConfig = CropConfig()) -> dict:
    """How far ``candidate`` keypoints (from :func:`predict`) are from ``reference`` ones on real people.

    ``mean_dist_hm_px``/``max_dist_hm_px``: keypoint distance in heatmap pixels over all joints; ``pck`` and
    ``pck_reference``: PCK@0.2 against GT; ``pck_delta``: their difference (negative = the candidate loses);
    ``agreement``: PCK@0.2 of the candidate with the reference's keypoints taken as GT.
    """
    gt = np.concatenate([kps for _, _, kps in people])
    hm_per_px = heatmap_width / np.concatenate([box_to_region(boxes, crop_cfg)[1][:, 0] for _, boxes, _ in people])
    dist = np.linalg.norm(candidate - reference, axis=-1) * hm_per_px[:, None]
    p_ref, p_cand = pck(reference, gt).overall, pck(candidate, gt).overall
    return {"people": len(gt), "mean_dist_hm_px": float(dist.mean()), "max_dist_hm_px": float(dist.max()),
            "pck_reference": p_ref, "pck": p_cand, "pck_delta": p_cand - p_ref,
            "agreement": pck(candidate, np.concatenate([reference, gt[..., 2:]], axis=-1)).overall}


def ms_per_crop(nets: dict[str, PoseNetwork], crops: np.ndarray, batch_sizes: tuple[int, ...], runs: int,
                rounds: int = 5) -> dict[str, dict[str, float]]:
    """Network time per crop for each net and fixed batch size: the median over ``rounds`` interleaved rounds.

    Interleaving spreads a shared machine's load changes over every variant alike, so the choice between
    variants is not decided by which one happened to be timed during a busy spell.
    """
    batches = {b: np.resize(crops, (b, *crops.shape[1:])) for b in batch_sizes}
    for net in nets.values():
        for batch in batches.values():
            net(batch)
    times: dict[tuple[str, int], list[float]] = {(k, b): [] for k in nets for b in batch_sizes}
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for (k, b), samples in times.items():
            t0 = time.perf_counter()
            for _ in range(per_round):
                nets[k](batches[b])
            samples.append((time.perf_counter() - t0) * 1e3 / (per_round * b))
    return {k: {str(b): float(np.median(times[k, b])) for b in batch_sizes} for k in nets}


# --- the export ----------------------------------------------------------------------------------------------------

def export(weights: str | Path | WeightsRef, out_dir: Path, input_size: tuple[int, int] | None = None,
           cfg: LiteConfig = LiteConfig(), data_root: Path | None = None) -> dict:
    """Convert, check and time ``cfg.precisions`` x ``cfg.batch_sizes``; returns (and writes) the manifest.

    Variants already in ``out_dir``'s manifest are kept, so asking for int8 later does not redo fp32. A checkpoint
    is exported from its cached ``.npz`` conversion (:func:`livepose.nets.load.lite_weights`).
    """
    ref = lite_weights(resolve(weights))
    data_root = Path(data_root or default_data_root())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras_net = load_keras(ref, input_size, cfg.batch_sizes)
    size = keras_net.input_size
    manifest = read_manifest(out_dir)
    manifest.update({"weights": ref.path.name, "weights_sha256": ref.sha256,
                     "input_size": list(size), "phase_deconv": cfg.phase_deconv})
    try:
        crops = calibration_crops(data_root, size, cfg.calibration_crops)
        people = evaluation_people(data_root)
    except CalibrationDataMissing as exc:
        if set(CALIBRATED) & set(cfg.precisions):
            raise
        log.warning("%s: exporting without an accuracy check", exc)
        crops, people = np.zeros((1, *size, 3), np.uint8), None
    reference = predict(keras_net, people) if people else None
    nets = {"keras": keras_net}
    for precision in cfg.precisions:
        files = {}
        for b in cfg.batch_sizes:
            t0 = time.perf_counter()
            name = f"{precision}_b{b}.tflite"
            write_atomic(out_dir / name, convert(keras_net.model, b, precision, crops, cfg.phase_deconv,
                                                 cfg.float_height_share))
            log.info("exported %s (%.0f s)", out_dir / name, time.perf_counter() - t0)
            files[str(b)] = name
        lite = nets[precision] = LiteNet({b: out_dir / files[str(b)] for b in cfg.batch_sizes}, cfg.num_threads,
                                         name=precision)
        accuracy = compare(reference, predict(lite, people), people, lite.heatmap_size[1]) if people else None
        manifest["variants"][precision] = {"files": files, "accuracy": accuracy}
    timings = ms_per_crop(nets, crops, cfg.batch_sizes, cfg.bench_runs)
    manifest.setdefault("keras_ms_per_crop", {}).update(timings.pop("keras"))
    for precision, ms in timings.items():
        manifest["variants"][precision]["ms_per_crop"] = ms
    write_atomic(out_dir / MANIFEST, json.dumps(manifest, indent=1).encode())
    return manifest
