"""State dict -> Keras: the architecture is inferred from the keys, and every mismatch is named.

State dicts here are numpy arrays in PyTorch layout, derived from the Keras model's own expectations, so
these tests need no torch; the numerical parity with PyTorch is in test_checkpoint_parity.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from livepose.config import ModelConfig
from livepose.nets.keras_net import RESNET_SPEC, build_simplebaseline
from livepose.nets.checkpoints.convert import (
    ArchitectureMismatchError,
    NonFiniteWeightsError,
    _expected,
    infer_config,
    normalize_keys,
    state_dict_to_keras,
)


def torch_state(depth: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A random state dict in official PoseResNet naming and torch layout for a ResNet of ``depth``."""
    rng = np.random.default_rng(seed)
    expected = _expected(build_simplebaseline(ModelConfig(depth=depth)))
    state = {k: rng.normal(0, 0.1, shape).astype(np.float32) for k, (_, shape) in expected.items()}
    for k in state:
        if k.endswith("running_var"):
            state[k] = np.abs(state[k]) + 0.5
    return state


@pytest.fixture(scope="module")
def r18() -> dict[str, np.ndarray]:
    return torch_state(18)


@pytest.mark.parametrize("depth", sorted(RESNET_SPEC))
def test_depth_inferred_from_keys(depth):
    kind, blocks = RESNET_SPEC[depth]
    convs = ("conv1", "conv2", "conv3") if kind == "bottleneck" else ("conv1", "conv2")
    state = {f"layer{s + 1}.{b}.{c}.weight": np.zeros(1) for s, n in enumerate(blocks) for b in range(n) for c in convs}
    assert infer_config(state).depth == depth


def test_prefixes_stripped_and_counters_dropped(r18):
    mmpose = {("keypoint_head." if k.startswith(("deconv", "final")) else "backbone.") + k: v for k, v in r18.items()}
    mmpose["backbone.bn1.num_batches_tracked"] = np.array(5)
    official = {f"module.{k}": v for k, v in r18.items()}
    assert normalize_keys(mmpose).keys() == r18.keys() == normalize_keys(official).keys()


def test_weights_land_in_the_right_layers(r18):
    model, cfg = state_dict_to_keras(r18)
    assert cfg == ModelConfig(depth=18)
    conv = model.get_layer("layer2_0_downsample_0").get_weights()[0]
    np.testing.assert_array_equal(conv, r18["layer2.0.downsample.0.weight"].transpose(2, 3, 1, 0))
    gamma, beta, mean, var = model.get_layer("deconv_layers_4").get_weights()
    np.testing.assert_array_equal(mean, r18["deconv_layers.4.running_mean"])
    np.testing.assert_array_equal(var, r18["deconv_layers.4.running_var"])
    deconv = model.get_layer("deconv_layers_3").get_weights()[0]  # torch (in, out, kh, kw)
    assert deconv[1, 2, 7, 5] == r18["deconv_layers.3.weight"][5, 7, 1, 2]
    np.testing.assert_array_equal(model.get_layer("final_layer").get_weights()[1], r18["final_layer.bias"])


def test_resnet18_checkpoint_into_resnet50(r18):
    with pytest.raises(ArchitectureMismatchError) as err:
        state_dict_to_keras(r18, ModelConfig(depth=50), source="res18.pth")
    msg = str(err.value)
    assert "res18.pth does not fit the model ResNet-50" in msg
    assert "looks like ResNet-18 (basic blocks (2, 2, 2, 2))" in msg
    assert "missing: " in msg and "layer1.0.conv3.weight" in msg and "mis-shaped" in msg


def test_image_classifier_is_described_as_one(r18):
    """Issue 29 item 8: a torchvision ResNet-18 classifier (an fc layer, no deconvs, no final layer) was described
    with the default head it lacks, "3 deconvs, 17 joints"."""
    classifier = {k: v for k, v in r18.items() if not k.startswith(("deconv_layers.", "final_layer."))}
    classifier.update({"fc.weight": np.zeros((1000, 512), np.float32), "fc.bias": np.zeros(1000, np.float32)})
    with pytest.raises(ArchitectureMismatchError) as err:
        state_dict_to_keras(classifier, source="resnet18.pth")
    found = str(err.value).split("looks like ", 1)[1]
    assert found.startswith("a ResNet-18 (basic blocks (2, 2, 2, 2)) image classifier (1000 classes) with no pose "
                            "head:") and "deconvs" not in found.split(":")[0]


def test_missing_tensor(r18):
    state = dict(r18)
    del state["layer3.1.bn2.running_var"]
    with pytest.raises(ArchitectureMismatchError, match=r"1 missing: layer3\.1\.bn2\.running_var$"):
        state_dict_to_keras(state)


def test_unexpected_tensor(r18):
    state = {**r18, "module.extra_head.weight": np.zeros((3, 3), np.float32)}
    with pytest.raises(ArchitectureMismatchError, match=r"1 unexpected: extra_head\.weight$"):
        state_dict_to_keras(state)


def test_wrong_shape(r18):
    state = {**r18, "final_layer.bias": np.zeros(16, np.float32)}
    with pytest.raises(ArchitectureMismatchError,
                       match=r"1 mis-shaped: final_layer\.bias \(16,\) \(model: \(17,\)\)"):
        state_dict_to_keras(state)


def test_non_finite_weights(r18):
    state = dict(r18)
    state["layer4.1.conv2.weight"] = state["layer4.1.conv2.weight"].copy()
    state["layer4.1.conv2.weight"][0, 0, 0, :2] = [np.nan, np.inf]
    with pytest.raises(NonFiniteWeightsError, match=r"layer4\.1\.conv2\.weight \(2 values\)"):
        state_dict_to_keras(state)


def test_unknown_block_layout(r18):
    state = {k: v for k, v in r18.items() if not k.startswith("layer4.1.")}
    with pytest.raises(ArchitectureMismatchError, match=r"basic blocks per stage \(2, 2, 2, 1\) match no ResNet"):
        state_dict_to_keras(state)


def test_load_model_from_shipped_files(r18, tmp_path):
    """``load_model`` takes the trainer's fp16 ``.npz`` and our cached ``.weights.h5`` (with its .json)."""
    from livepose.nets.keras_net import save_weights_npz
    from livepose.nets.checkpoints.convert import load_model, save_keras
    from livepose.nets.checkpoints.torchfile import CheckpointError

    model, cfg = state_dict_to_keras(r18)
    save_weights_npz(model, tmp_path / "shipped.npz", cfg)
    h5 = save_keras(model, cfg, tmp_path / "keras" / "mine.weights.h5", source="test")
    x = np.random.default_rng(1).normal(size=(1, 256, 192, 3)).astype(np.float32)
    want = model(x, training=False).numpy()
    np.testing.assert_array_equal(load_model(h5)(x, training=False).numpy(), want)
    from_npz = load_model(tmp_path / "shipped.npz", input_size=(384, 288))
    assert from_npz.input_shape[1:3] == (384, 288)
    np.testing.assert_array_equal(from_npz.get_layer("final_layer").get_weights()[1],
                                  r18["final_layer.bias"].astype(np.float16).astype(np.float32))
    (tmp_path / "keras" / "mine.json").unlink()
    with pytest.raises(CheckpointError, match=r"no mine\.json beside it"):
        load_model(h5)
    with pytest.raises(FileNotFoundError, match="not a known checkpoint"):
        load_model(tmp_path / "nothing.pth")
