"""Imported checkpoints give the same heatmaps in Keras as in PyTorch, on a real image.

The reference network is the official PoseResNet (microsoft/human-pose-estimation.pytorch,
``lib/models/pose_resnet.py``), rebuilt here with random weights *and* random BatchNorm statistics so
that every tensor matters, saved with ``torch.save`` in both serializations and in both namings.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch (the reference implementation) is not installed")
nn = torch.nn

from livepose.config import ModelConfig  # noqa: E402
from livepose.nets.keras_net import normalize  # noqa: E402
from livepose.nets.checkpoints.convert import import_checkpoint, load_model  # noqa: E402
from livepose.nets.checkpoints.torchfile import load_state_dict  # noqa: E402

BN_MOMENTUM = 0.1
TOLERANCE = 1e-4


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


RESNETS = {18: (BasicBlock, [2, 2, 2, 2]), 50: (Bottleneck, [3, 4, 6, 3])}


class PoseResNet(nn.Module):
    def __init__(self, depth, num_joints=17, deconv_filters=256, num_deconv=3):
        super().__init__()
        block, layers = RESNETS[depth]
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        deconv = []
        for _ in range(num_deconv):
            deconv += [nn.ConvTranspose2d(self.inplanes, deconv_filters, 4, 2, 1, 0, bias=False),
                       nn.BatchNorm2d(deconv_filters, momentum=BN_MOMENTUM), nn.ReLU(inplace=True)]
            self.inplanes = deconv_filters
        self.deconv_layers = nn.Sequential(*deconv)
        self.final_layer = nn.Conv2d(deconv_filters, num_joints, 1, 1, 0)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion, momentum=BN_MOMENTUM),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.final_layer(self.deconv_layers(x))


def random_pose_resnet(depth: int, crop: np.ndarray, seed: int = 0) -> PoseResNet:
    """Random weights, and random BatchNorm statistics of the right scale, so every tensor matters.

    Raw random statistics let activations grow about 100x through the network, and a 1e-4 tolerance
    would then test float32 rounding, not the conversion. So the statistics are measured on ``crop``
    (one train-mode pass) and then randomly perturbed: activations stay O(1), like a trained network's.
    """
    torch.manual_seed(seed)
    net = PoseResNet(depth)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                fan_in = m.weight[0].numel() if isinstance(m, nn.Conv2d) else m.weight.shape[0] * 4
                m.weight.normal_(0, (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.uniform_(-0.5, 0.5)
        for m in bns:
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.3, 0.3)
            m.momentum = 1.0  # running stats := this batch's
        net.train()(torch.from_numpy(crop.transpose(0, 3, 1, 2).copy()))
        for m in bns:
            m.running_mean += m.running_var.sqrt() * torch.empty_like(m.running_mean).uniform_(-0.3, 0.3)
            m.running_var *= torch.empty_like(m.running_var).uniform_(0.7, 1.4)
            m.momentum = BN_MOMENTUM
            m.num_batches_tracked.fill_(1234)
        # trained heatmaps peak near 1: scale the output to that range, so the tolerance means what it
        # would for real weights (a random ResNet-50 peaks near 15, and there float32 alone, torch vs
        # torch in float64, differs by 2.5e-4)
        peak = net.eval()(torch.from_numpy(crop.transpose(0, 3, 1, 2).copy())).abs().max()
        net.final_layer.weight /= peak
        net.final_layer.bias /= peak
    return net


@pytest.fixture(scope="module")
def crop(shared_data) -> np.ndarray:
    """A real person image at the network's input size, as the normalised NHWC batch both nets see."""
    image = cv2.imread(str(shared_data / "images" / "tfjs_pose.jpg"))
    assert image is not None, "tfjs_pose.jpg unreadable"
    rgb = cv2.cvtColor(cv2.resize(image, (192, 256), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return normalize(rgb[None])


def torch_heatmaps(net: PoseResNet, crop: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(crop.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)


def save(net: PoseResNet, path, naming: str, zipped: bool) -> None:
    state = net.state_dict()
    if naming == "official":
        obj = {f"module.{k}": v for k, v in state.items()}  # as saved from nn.DataParallel
    else:  # MMPose 0.x: backbone/keypoint_head prefixes, wrapped with meta
        obj = {"meta": {"mmcv_version": "1.0.5", "epoch": 210, "best_score": np.float64(0.718)},
               "state_dict": {("keypoint_head." if k.startswith(("deconv", "final")) else "backbone.") + k: v
                              for k, v in state.items()}}
    torch.save(obj, path, _use_new_zipfile_serialization=zipped)


@pytest.mark.parametrize("depth", [18, 50])
def test_keras_heatmaps_match_pytorch(depth, crop, tmp_path):
    net = random_pose_resnet(depth, crop)
    reference = torch_heatmaps(net, crop)
    assert reference.shape == (1, 64, 48, 17)
    assert np.abs(reference).max() == pytest.approx(1, rel=1e-3) and reference.std() > 0.05, "degenerate reference"

    cases = [("official", False), ("mmpose", True)] if depth == 18 else [("official", True), ("mmpose", False)]
    heatmaps = {}
    for naming, zipped in cases:
        path = tmp_path / f"{naming}_{'zip' if zipped else 'legacy'}_res{depth}_256x192.pth"
        save(net, path, naming, zipped)
        sd = load_state_dict(path)
        for key, value in net.state_dict().items():  # the reader alone is exact, bit for bit
            prefix = "module." if naming == "official" else next(p for p in ("backbone.", "keypoint_head.")
                                                                   if p + key in sd)
            np.testing.assert_array_equal(sd[prefix + key], value.numpy())
        model, weights = import_checkpoint(path, cache=tmp_path / "cache")
        assert weights.exists()
        assert model.name == f"simplebaseline_resnet{depth}_256x192"
        heatmaps[path.name] = model(crop, training=False).numpy()

    for name, out in heatmaps.items():
        err = np.abs(out - reference).max()
        assert err < TOLERANCE, f"{name}: max abs heatmap error {err:.2e} vs PyTorch"

    # the converted weights reload from the cache into an identical network
    cached = load_model(weights)
    np.testing.assert_array_equal(cached(crop, training=False).numpy(), heatmaps[path.name])


def test_explicit_depth_and_input_size(tmp_path, crop):
    """A checkpoint name without a size takes the given one; the network is fully convolutional."""
    net = random_pose_resnet(18, crop, seed=1)
    path = tmp_path / "model_best.pth"
    save(net, path, "official", zipped=True)
    model, _ = import_checkpoint(path, name="mine", input_size=(384, 288), cfg=ModelConfig(depth=18),
                                 cache=tmp_path / "cache")
    assert model.input_shape[1:3] == (384, 288) and model.output_shape[1:3] == (96, 72)
    assert (tmp_path / "cache" / "keras" / "mine.weights.h5").exists()
