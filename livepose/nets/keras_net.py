"""SimpleBaseline (Xiao et al. 2018) in Keras, laid out exactly like the official PyTorch PoseResNet.

The backbone is written here rather than taken from ``keras.applications``: torchvision's ResNet puts the
stride of a bottleneck on its 3x3 convolution and pads symmetrically, and official checkpoints only load one
to one into that layout. Layer names are the PyTorch state-dict keys with dots turned into underscores.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from livepose.config import ModelConfig
from livepose.nets.weights import META_KEY, WeightsRef, config_from_meta, meta_array, open_npz, savez_atomic

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

keras = tf.keras

#: depth -> (block type, blocks per stage)
RESNET_SPEC: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
EXPANSION = {"basic": 1, "bottleneck": 4}


def _conv(x: tf.Tensor, filters: int, kernel: int, stride: int, name: str) -> tf.Tensor:
    """A bias-free convolution with PyTorch's symmetric zero padding (kernel // 2)."""
    pad = kernel // 2
    if pad:
        x = keras.layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(filters, kernel, strides=stride, use_bias=False, name=name)(x)


def _bn(x: tf.Tensor, cfg: ModelConfig, name: str) -> tf.Tensor:
    return keras.layers.BatchNormalization(epsilon=cfg.bn_epsilon, momentum=cfg.bn_momentum, name=name)(x)


def _block(x: tf.Tensor, kind: str, planes: int, stride: int, cfg: ModelConfig, name: str) -> tf.Tensor:
    out_ch = planes * EXPANSION[kind]
    shortcut = x
    if stride != 1 or x.shape[-1] != out_ch:
        shortcut = _conv(x, out_ch, 1, stride, f"{name}_downsample_0")
        shortcut = _bn(shortcut, cfg, f"{name}_downsample_1")
    if kind == "basic":
        y = keras.layers.ReLU()(_bn(_conv(x, planes, 3, stride, f"{name}_conv1"), cfg, f"{name}_bn1"))
        y = _bn(_conv(y, planes, 3, 1, f"{name}_conv2"), cfg, f"{name}_bn2")
    else:
        y = keras.layers.ReLU()(_bn(_conv(x, planes, 1, 1, f"{name}_conv1"), cfg, f"{name}_bn1"))
        y = keras.layers.ReLU()(_bn(_conv(y, planes, 3, stride, f"{name}_conv2"), cfg, f"{name}_bn2"))
        y = _bn(_conv(y, out_ch, 1, 1, f"{name}_conv3"), cfg, f"{name}_bn3")
    return keras.layers.ReLU()(keras.layers.Add()([y, shortcut]))


def _resnet_backbone(inp: tf.Tensor, cfg: ModelConfig) -> tf.Tensor:
    """torchvision's ResNet up to its stride-32 output, with PyTorch's layer names."""
    if cfg.depth not in RESNET_SPEC:
        raise ValueError(f"ResNet depth must be one of {sorted(RESNET_SPEC)}, got {cfg.depth}")
    kind, layers = RESNET_SPEC[cfg.depth]
    x = keras.layers.ReLU()(_bn(_conv(inp, 64, 7, 2, "conv1"), cfg, "bn1"))
    x = keras.layers.ZeroPadding2D(1)(x)  # after ReLU, zero padding equals PyTorch's -inf padding
    x = keras.layers.MaxPooling2D(3, strides=2)(x)
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers), start=1):
        for b in range(blocks):
            stride = 2 if (b == 0 and stage > 1) else 1
            x = _block(x, kind, planes, stride, cfg, f"layer{stage}_{b}")
    return x


def _mobilenet_backbone(inp: tf.Tensor, cfg: ModelConfig) -> tf.Tensor:
    """MoveNet's backbone: Keras MobileNetV2 (layer names as MoveNet's graph) with a 1280-channel Conv_1.

    Thunder's is MobileNetV2-1.75, Lightning's MobileNetV2-1.0 (``cfg.mobilenet_alpha``).

    The network's input stays ImageNet-normalised like every other livepose net (:func:`normalize`); the first
    layer maps it to MoveNet's x / 127.5 - 1, so pose-pretrained weights see what they were trained on.
    Its BatchNorm layers hold MoveNet's folded biases and stay frozen (inference mode) while fine-tuning.
    """
    to_movenet = keras.layers.Rescaling(IMAGENET_STD / 127.5, (IMAGENET_MEAN - 127.5) / 127.5, name="to_movenet")
    base = keras.applications.MobileNetV2(input_tensor=to_movenet(inp), alpha=cfg.mobilenet_alpha,
                                          include_top=False, weights=None)
    x = base.get_layer("block_16_project_BN").output
    x = keras.layers.Conv2D(cfg.mobilenet_last_filters, 1, use_bias=False, name="Conv_1")(x)
    x = keras.layers.BatchNormalization(epsilon=MOBILENET_BN_EPSILON, name="Conv_1_bn")(x)
    return keras.layers.ReLU(6.0, name="out_relu")(x)


MOBILENET_BN_EPSILON = 1e-3   # keras.applications.MobileNetV2's
HEAD_INIT_STD = 0.001         # SimpleBaseline's deconv and final-layer weight init
BACKBONES: dict[str, Callable[[tf.Tensor, ModelConfig], tf.Tensor]] = {
    "resnet": _resnet_backbone,
    "mobilenetv2": _mobilenet_backbone,
}


def describe(cfg: ModelConfig) -> str:
    """A short name of the architecture, for messages and model names."""
    if cfg.backbone == "mobilenetv2":
        return f"MobileNetV2-{cfg.mobilenet_alpha:g} (MoveNet)"
    return f"ResNet-{cfg.depth}"


def build_simplebaseline(cfg: ModelConfig = ModelConfig(), batch_size: int | None = None) -> keras.Model:
    """Backbone + 3x (ConvTranspose 4x4/2, BN, ReLU) + 1x1 conv to ``num_joints`` heatmaps.

    Input: float32 NHWC crops, RGB, normalised with ImageNet mean/std (see :func:`normalize`).
    Output: NHWC heatmaps at 1/4 of the input size (64x48 for 256x192).
    """
    if cfg.backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {sorted(BACKBONES)}, got {cfg.backbone!r}")
    h, w = cfg.input_size
    if any(s is not None and s % 32 for s in (h, w)):
        raise ValueError(f"input size must be a multiple of 32 (the backbone's stride), got {h}x{w}")
    inp = keras.Input((h, w, 3), batch_size=batch_size, name="image")
    x = BACKBONES[cfg.backbone](inp, cfg)
    # the official init (pose_resnet.py): N(0, 0.001) head weights, so training starts at the all-zero heatmap's
    # loss instead of 100x above it; from Keras' default init the head first collapses onto that plateau and stays
    head_init = keras.initializers.RandomNormal(stddev=HEAD_INIT_STD)
    for i in range(cfg.num_deconv):
        x = keras.layers.Conv2DTranspose(
            cfg.deconv_filters, 4, strides=2, padding="same", use_bias=False, kernel_initializer=head_init,
            name=f"deconv_layers_{3 * i}")(x)
        x = keras.layers.ReLU()(_bn(x, cfg, f"deconv_layers_{3 * i + 1}"))
    out = keras.layers.Conv2D(cfg.num_joints, 1, kernel_initializer=head_init, name="final_layer")(x)
    tag = f"resnet{cfg.depth}" if cfg.backbone == "resnet" else cfg.backbone
    return keras.Model(inp, out, name=f"simplebaseline_{tag}_{h}x{w}")


def freeze_backbone_bn(model: keras.Model) -> None:
    """Keep a pose-pretrained backbone's BatchNorm in inference mode (its parameters are folded biases)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.name.startswith("deconv_layers"):
            layer.trainable = False


IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255.0
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255.0


def normalize(crops_rgb_uint8: np.ndarray) -> np.ndarray:
    """uint8 RGB crops -> the float32 input the official checkpoints were trained on."""
    return (crops_rgb_uint8.astype(np.float32) - IMAGENET_MEAN) / IMAGENET_STD


class PoseNet:
    """A SimpleBaseline ready for inference: one traced ``tf.function`` per fixed batch size.

    Fixed shapes keep TensorFlow from retracing as the number of people changes; a batch is padded up to
    the next compiled size and the padding is dropped from the output.
    """

    def __init__(self, model: keras.Model, batch_sizes: tuple[int, ...] = (1, 2, 4, 8), name: str = "",
                 score_scale: float = 1.0) -> None:
        self.model = model
        self.name = name or model.name
        self.score_scale = score_scale    # multiplies heatmap peaks into confidences (see livepose.commands.calibrate)
        self.batch_sizes = tuple(sorted(batch_sizes))
        h, w = model.input_shape[1:3]
        self.input_size = (int(h), int(w))
        self.heatmap_size = tuple(int(s) for s in model.output_shape[1:3])
        self.num_joints = int(model.output_shape[-1])
        self._fns: dict[int, Callable] = {}

    def _fn(self, n: int) -> Callable:
        if n not in self._fns:
            spec = tf.TensorSpec((n, *self.input_size, 3), tf.float32)
            self._fns[n] = tf.function(lambda x: self.model(x, training=False), input_signature=[spec])
        return self._fns[n]

    def warmup(self) -> None:
        for n in self.batch_sizes:
            self(np.zeros((n, *self.input_size, 3), np.uint8))

    def __call__(self, crops_rgb_uint8: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB crops -> (N, J, h, w) float32 heatmaps (channels first, as decoded)."""
        n = len(crops_rgb_uint8)
        if n == 0:
            return np.zeros((0, self.num_joints, *self.heatmap_size), np.float32)
        out = []
        for start in range(0, n, self.batch_sizes[-1]):
            chunk = normalize(crops_rgb_uint8[start:start + self.batch_sizes[-1]])
            size = next(b for b in self.batch_sizes if b >= len(chunk))
            padded = np.zeros((size, *chunk.shape[1:]), np.float32)
            padded[: len(chunk)] = chunk
            out.append(self._fn(size)(padded).numpy()[: len(chunk)])
        return np.concatenate(out).transpose(0, 3, 1, 2)


def save_weights_npz(model: keras.Model, path: str | os.PathLike, cfg: ModelConfig, dtype: str = "float16",
                     only: set[str] | None = None) -> None:
    """Store every layer's weights (or the layers named in ``only``) in one compressed ``.npz``.

    float16 halves the file; accuracy is kept. The file carries the architecture it belongs to, so loading into
    another depth or size fails clearly; a partial file (a pretrained backbone) loads with ``partial=True``.
    """
    meta = {"depth": cfg.depth, "num_joints": cfg.num_joints, "input_size": list(cfg.input_size),
            "backbone": cfg.backbone, "deconv_filters": cfg.deconv_filters}
    if cfg.backbone == "mobilenetv2":
        meta["mobilenet_alpha"] = cfg.mobilenet_alpha
    arrays = {META_KEY: meta_array(meta)}
    for layer in model.layers:
        if only is not None and layer.name not in only:
            continue
        for i, w in enumerate(layer.get_weights()):
            arrays[f"{layer.name}/{i}"] = w.astype(dtype)
    savez_atomic(path, arrays)


def load_weights_npz(model: keras.Model, path: str | os.PathLike, partial: bool = False) -> None:
    """Load a file written by :func:`save_weights_npz`; every layer and shape must match.

    ``partial``: the file may hold only some layers (a pretrained backbone); those it holds must match.
    """
    with open_npz(path) as data:
        names = {k for k in data.files if k != META_KEY}
        for layer in model.layers:
            current = layer.get_weights()
            if not current or (partial and f"{layer.name}/0" not in names):
                continue
            keys = [f"{layer.name}/{i}" for i in range(len(current))]
            missing = [k for k in keys if k not in names]
            if missing:
                raise ValueError(f"{path}: missing weights {missing[:5]} for layer {layer.name!r}")
            new = [data[k].astype(np.float32) for k in keys]
            for k, a, b in zip(keys, current, new):
                if a.shape != b.shape:
                    raise ValueError(f"{path}: {k} has shape {b.shape}, the model expects {a.shape}")
            layer.set_weights(new)
            names.difference_update(keys)
        if names:
            raise ValueError(f"{path}: weights for layers the model does not have: {sorted(names)[:5]}")


def model_from_npz(ref: WeightsRef, input_size: tuple[int, int] | None = None) -> keras.Model:
    """The Keras model an ``.npz`` reference describes, with its weights, at ``input_size`` (default: its own)."""
    model = build_simplebaseline(config_from_meta(ref.meta, input_size))
    load_weights_npz(model, ref.path)
    return model
