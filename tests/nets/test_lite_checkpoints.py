"""A checkpoint reaches LiteRT: converted once to a cached ``.npz``, exported once, then run without TensorFlow.

The checkpoint is a genuine ``torch.save`` file of the official PoseResNet-18 (random weights and BatchNorm
statistics, as in test_checkpoint_parity) at 128x96, which keeps the conversion and the fp32 export quick; the
heatmaps are compared on real person crops (LSPet, through the exporter's own crop code).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is needed to write a genuine checkpoint")

from test_checkpoint_parity import random_pose_resnet, save, torch_heatmaps  # noqa: E402

from livepose.commands import export as export_command  # noqa: E402
from livepose.config import LiteConfig  # noqa: E402
from livepose.hashing import sha256_file  # noqa: E402
from livepose.nets.checkpoints import registry  # noqa: E402
from livepose.nets.export import calibration_crops  # noqa: E402
from livepose.nets.keras_net import normalize  # noqa: E402
from livepose.nets.lite_cache import (CONVERTED, SHA_PREFIX, converted_path, lite_dir, read_manifest,  # noqa: E402
                                      require_npz)
from livepose.nets.lite_net import LiteNet  # noqa: E402
from livepose.nets.load import lite_weights, load_network, resolve_runtime  # noqa: E402
from livepose.nets.weights import META_KEY, WeightsRef, resolve  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SIZE = (128, 96)
NAME = "pose_resnet_18_128x96"          # the input size comes from the name, as for published checkpoints
CROPS = 4
#: fp32 LiteRT against Keras (and PyTorch) on the same checkpoint, relative to the peak: float rounding only
#: (measured 5.9e-6 against Keras, 5.3e-6 against PyTorch, peak 1.0)
FP32_TOLERANCE = 1e-4
QUICK = LiteConfig(batch_sizes=(1, 2), calibration_crops=8, bench_runs=2)


@pytest.fixture(scope="module")
def first_start(tmp_path_factory, shared_data):
    """A fresh cache; 'auto' asked before anything is converted; then the first LiteRT load (convert + export)."""
    tmp = tmp_path_factory.mktemp("lite_ckpt")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIVEPOSE_CACHE", str(tmp / "cache"))
        crops = calibration_crops(shared_data, SIZE, CROPS)
        net = random_pose_resnet(18, normalize(crops))
        checkpoint = tmp / f"{NAME}.pth"
        save(net, checkpoint, "official", zipped=True)
        before = {p: resolve_runtime("auto", resolve(checkpoint), precision=p) for p in ("fp32", "auto")}
        lite = load_network(str(checkpoint), runtime="litert", precision="fp32", lite_cfg=QUICK)
        keras = load_network(str(checkpoint), runtime="keras", batch_sizes=QUICK.batch_sizes)
        yield {"tmp": tmp, "cache": tmp / "cache", "checkpoint": checkpoint, "crops": crops, "before": before,
               "lite": lite, "keras": keras, "torch": torch_heatmaps(net, normalize(crops)).transpose(0, 3, 1, 2)}


def test_litert_heatmaps_equal_keras_on_real_crops(first_start):
    lite, keras, crops = first_start["lite"], first_start["keras"], first_start["crops"]
    assert isinstance(lite, LiteNet) and lite.batch_sizes == QUICK.batch_sizes and "fp32" in lite.name
    ref, got = keras(crops), lite(crops)
    assert got.shape == ref.shape == (CROPS, 17, 32, 24)
    peak = np.abs(ref).max()
    assert ref.std() > 0.05 * peak, "degenerate reference heatmaps"
    np.testing.assert_allclose(got, ref, atol=FP32_TOLERANCE * peak)
    np.testing.assert_allclose(got, first_start["torch"], atol=FP32_TOLERANCE * peak)   # and the checkpoint's own


def test_conversion_is_a_float32_npz_in_the_cache(first_start):
    checkpoint = first_start["checkpoint"]
    npz = converted_path(resolve(checkpoint))
    assert npz == first_start["cache"] / CONVERTED / f"{NAME}-{sha256_file(checkpoint)[:SHA_PREFIX]}.npz"
    meta = resolve(npz).meta
    assert meta["input_size"] == list(SIZE) and meta["depth"] == 18
    with np.load(npz) as data:
        assert {data[k].dtype for k in data.files if k != META_KEY} == {np.dtype(np.float32)}
    manifest = read_manifest(lite_dir(resolve(npz)))
    assert manifest["weights"] == npz.name and set(manifest["variants"]) == {"fp32"}


def test_second_start_uses_the_cache_without_tensorflow(first_start):
    """A fresh interpreter with ``import tensorflow`` made to fail: 'auto' finds the converted npz and its export,
    neither converts nor exports again, and gives the first start's heatmaps."""
    crops_file = first_start["tmp"] / "crops.npy"
    np.save(crops_file, first_start["crops"])
    code = textwrap.dedent(f"""
        import json, sys
        sys.modules["tensorflow"] = None             # any `import tensorflow` now raises ImportError
        import numpy as np
        import livepose.nets.load as load

        load.export_in_child = lambda *a, **k: sys.exit("exported again")
        net = load.load_network({str(first_start["checkpoint"])!r}, runtime="auto", precision="auto")
        np.save({str(first_start["tmp"] / "heatmaps.npy")!r}, net(np.load({str(crops_file)!r})))
        loaded = sorted(m for m, v in sys.modules.items() if v is not None and m.split(".")[0] == "tensorflow")
        print(json.dumps({{"type": type(net).__name__, "name": net.name, "tf": loaded}}))
    """)
    env = {**os.environ, "LIVEPOSE_CACHE": str(first_start["cache"])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["type"] == "LiteNet" and result["tf"] == [] and "fp32" in result["name"]
    first = first_start["lite"](first_start["crops"])
    np.testing.assert_allclose(np.load(first_start["tmp"] / "heatmaps.npy"), first, atol=1e-6 * np.abs(first).max())


def test_auto_runtime_is_keras_before_and_litert_after(first_start, monkeypatch):
    monkeypatch.setenv("LIVEPOSE_CACHE", str(first_start["cache"]))
    ref = resolve(first_start["checkpoint"])
    assert first_start["before"] == {"fp32": "keras", "auto": "keras"}          # nothing converted yet
    assert resolve_runtime("auto", ref, precision="fp32") == "litert"
    assert resolve_runtime("auto", ref, precision="auto") == "litert"
    assert resolve_runtime("auto", ref, precision="int8") == "keras"              # converted, not exported as int8
    assert resolve_runtime("auto", ref, input_size=(256, 192), precision="fp32") == "keras"   # another size


def test_keras_weights_file_converts_to_the_same_npz(first_start, monkeypatch):
    """The ``.weights.h5`` the Keras runtime cached (architecture from its .json) takes the same way to LiteRT."""
    monkeypatch.setenv("LIVEPOSE_CACHE", str(first_start["cache"]))
    h5 = registry.keras_path(NAME, first_start["cache"])
    ref = resolve(h5)
    assert ref.kind == "keras" and resolve_runtime("auto", ref) == "keras"
    npz = lite_weights(ref)
    assert npz.path == first_start["cache"] / CONVERTED / f"{NAME}-{sha256_file(h5)[:SHA_PREFIX]}.npz"
    from_torch = converted_path(resolve(first_start["checkpoint"]))
    with np.load(npz.path) as got, np.load(from_torch) as want:
        assert set(got.files) == set(want.files)
        for key in want.files:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_export_command_takes_a_checkpoint(first_start, monkeypatch, capsys):
    """`livepose export --model <checkpoint>` exports from the converted npz into the cache the runtime reads."""
    monkeypatch.setenv("LIVEPOSE_CACHE", str(first_start["cache"]))
    exported = []

    def fake_export(ref, out_dir, *args):      # the real export is test_export_lite's; here: what it is given
        exported.append(ref)
        return read_manifest(out_dir)

    monkeypatch.setattr(export_command, "export", fake_export)
    parser = argparse.ArgumentParser()
    export_command.add_arguments(parser)
    args = parser.parse_args(["--model", str(first_start["checkpoint"]), "--precision", "fp32", "--batch-sizes", "1,2"])
    assert export_command.main(args) == 0
    npz = converted_path(resolve(first_start["checkpoint"]))
    assert [r.path for r in exported] == [npz]
    assert capsys.readouterr().out.startswith(str(lite_dir(resolve(npz))))


def test_cache_keys_and_refusals(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEPOSE_CACHE", str(tmp_path / "cache"))
    name, ckpt = next(iter(registry.CHECKPOINTS.items()))
    assert converted_path(resolve(name)) == tmp_path / "cache" / CONVERTED / f"{name}-{ckpt.sha256_prefix}.npz"
    published = tmp_path / "res50_coco_256x192-ec54d7f3_20200709.pth"
    published.write_bytes(b"one")
    key = converted_path(WeightsRef(str(published), "torch", published))
    assert key.name == f"res50_coco_256x192-{sha256_file(published)[:SHA_PREFIX]}.npz"
    published.write_bytes(b"other bytes")         # a changed file is another conversion, never a stale one
    assert converted_path(WeightsRef(str(published), "torch", published)) != key
    with pytest.raises(ValueError, match="convert it first"):
        require_npz(WeightsRef(str(published), "torch", published))
