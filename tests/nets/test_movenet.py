"""MoveNet Thunder: the TF.js weight reader, the backbone transplant, the teacher, and training from its backbone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
THUNDER = ROOT / "assets" / "movenet_thunder.tflite"
BACKBONE = ROOT / "assets" / "movenet_thunder_backbone.npz"
LIGHTNING_BACKBONE = ROOT / "assets" / "movenet_lightning_backbone.npz"


def test_tfjs_reader_dequantises_float16_shards_in_manifest_order(tmp_path):
    """A TF.js graph model's weights: float16-quantised floats and plain int32, concatenated over two shards."""
    from livepose.movenet import read_tfjs_weights

    a = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
    b = np.array([7, -1], np.int32)
    blob = a.astype(np.float16).tobytes() + b.tobytes()
    (tmp_path / "s1.bin").write_bytes(blob[:5])
    (tmp_path / "s2.bin").write_bytes(blob[5:])
    manifest = [{"paths": ["s1.bin", "s2.bin"], "weights": [
        {"name": "x/kernel", "shape": [2, 3], "dtype": "float32",
         "quantization": {"dtype": "float16", "original_dtype": "float32"}},
        {"name": "x/dim", "shape": [2], "dtype": "int32"}]}]
    (tmp_path / "model.json").write_text(json.dumps({"weightsManifest": manifest}))
    out = read_tfjs_weights(tmp_path / "model.json")
    np.testing.assert_array_equal(out["x/kernel"], a)
    assert out["x/kernel"].dtype == np.float32
    np.testing.assert_array_equal(out["x/dim"], b)
    (tmp_path / "s2.bin").write_bytes(blob[5:] + b"\0\0")
    with pytest.raises(ValueError, match="manifest describes"):
        read_tfjs_weights(tmp_path / "model.json")


def test_transplanted_backbone_equals_movenets_own_on_a_real_crop(shared_data):
    """The converter's layer mapping: our Keras MobileNetV2-1.75 with MoveNet's weights gives MoveNet's stride-32
    features (its ``out_relu``, read inside the shipped .tflite) on a real person, within float16 rounding."""
    import cv2
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from livepose.config import ModelConfig
    from livepose.nets.keras_net import build_simplebaseline, keras, load_weights_npz, normalize

    image = cv2.cvtColor(cv2.imread(str(shared_data / "images" / "tfjs_pose.jpg")), cv2.COLOR_BGR2RGB)
    crop = cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA)
    interp = Interpreter(str(THUNDER), experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], crop[None].astype(np.int32))
    interp.invoke()
    tap = next(d["index"] for d in interp.get_tensor_details()
               if "model/out_relu/Relu6" in d["name"] and len(d["shape"]) == 4)
    theirs = interp.get_tensor(tap)[0]

    model = build_simplebaseline(ModelConfig(backbone="mobilenetv2", input_size=(256, 256)))
    load_weights_npz(model, BACKBONE, partial=True)
    ours = keras.Model(model.input, model.get_layer("out_relu").output)(normalize(crop[None])).numpy()[0]
    assert ours.shape == theirs.shape == (8, 8, 1280)
    assert theirs.max() > 1.0                                  # a real activation map, not zeros
    assert np.abs(ours - theirs).max() < 0.02                  # float16 weights, values up to 6 (ReLU6)


def test_both_shipped_backbones_fit_a_simplebaseline_of_the_width_their_weights_name():
    """Thunder's backbone is MobileNetV2-1.75, Lightning's 1.0 (the fast network's start): the width is read from
    the first convolution, and every layer of each file loads into a network of that width and no other. (That
    Lightning's transplant equals Lightning's own features was checked once, 0.0052 max abs: docs/training-log.md,
    l1; its .tflite is not shipped.)"""
    from livepose.config import ModelConfig
    from livepose.movenet import backbone_alpha
    from livepose.nets.keras_net import build_simplebaseline, load_weights_npz
    from livepose.nets.weights import open_npz

    def build(alpha: float):
        return build_simplebaseline(ModelConfig(backbone="mobilenetv2", mobilenet_alpha=alpha, deconv_filters=128))

    for path, alpha, other in ((BACKBONE, 1.75, 1.0), (LIGHTNING_BACKBONE, 1.0, 1.75)):
        with open_npz(path) as data:
            assert backbone_alpha({"Conv1/0": data["Conv1/0"]}) == alpha
        load_weights_npz(build(alpha), path, partial=True)
        with pytest.raises(ValueError):
            load_weights_npz(build(other), path, partial=True)
    with pytest.raises(ValueError, match="not one of MoveNet's"):
        backbone_alpha({"Conv1/0": np.zeros((3, 3, 3, 24), np.float32)})


def test_teacher_agrees_with_ground_truth_and_fills_the_face(shared_data):
    """MoveNet labels a real LSPet person: its body joints land on the human labels, and it fills the face
    joints LSPet does not label, each weighted by its confidence."""
    from livepose.data import keypoint_box, load_pose17, read_rgb
    from livepose.train.teacher import MoveNetTeacher, merge_with_gt

    teacher = MoveNetTeacher()
    close, filled = [], []
    for path, gt, box in load_pose17(shared_data / "train_pool/lspet/annotations.pose17.json")[:20]:
        kps = teacher(read_rgb(path), keypoint_box(gt))
        if kps is None:
            continue
        diag = float(np.hypot(*keypoint_box(gt)[2:]))
        labelled = gt[:, 2] > 0
        close.append(np.median(np.linalg.norm(kps[labelled, :2] - gt[labelled, :2], axis=1)) < 0.1 * diag)
        merged = merge_with_gt(gt, kps, diag)
        face = merged[:5, 2]
        filled.append((face > 0).sum())
        assert ((face == 0) | ((face > 0) & (face <= 1))).all()
        np.testing.assert_array_equal(merged[labelled], gt[labelled])   # ground truth always wins
    assert len(close) >= 18 and np.mean(close) >= 0.8
    assert np.mean(filled) >= 2


def test_tiny_training_from_movenets_backbone(shared_data, tmp_path, capsys):
    """`livepose train` on the tiny MoveNet config: starts from MoveNet's backbone (BatchNorm frozen: its folded
    biases are kept bit for bit), trains the whole network, exports a file the runtime loads, and reports its
    accuracy on images_gt on its own."""
    from livepose.cli import main
    from livepose.nets.weights import read_npz_meta
    from livepose.nets.load import load_network

    out = tmp_path / "tiny.npz"
    assert main(["train", "--config", str(ROOT / "configs/tiny_movenet.json"), "--data", str(shared_data),
                 "--workdir", str(tmp_path / "work"), "--export", str(out)]) == 0
    report = capsys.readouterr().out
    assert "livepose eval: model tiny" in report and "37 people" in report and "PCK@0.2" in report
    meta = read_npz_meta(out)
    assert meta["backbone"] == "mobilenetv2" and meta["deconv_filters"] == 128
    with np.load(out) as trained, np.load(BACKBONE) as start:
        for key in ("bn_Conv1/1", "block_16_project_BN/1", "Conv_1_bn/3"):   # frozen: unchanged
            np.testing.assert_array_equal(trained[key], start[key])
        moved = np.abs(trained["Conv1/0"].astype(np.float32) - start["Conv1/0"].astype(np.float32))
        assert 0 < moved.max() < 0.01                  # trained from MoveNet's kernel, not from scratch
    net = load_network(str(out), batch_sizes=(1,))
    heatmaps = net(np.zeros((1, 256, 192, 3), np.uint8))
    assert heatmaps.shape == (1, 17, 64, 48) and np.isfinite(heatmaps).all()
