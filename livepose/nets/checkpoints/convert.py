"""PyTorch SimpleBaseline state dicts -> the Keras model of :func:`livepose.nets.keras_net.build_simplebaseline`.

Both namings are accepted: the official microsoft/human-pose-estimation.pytorch one (``conv1.weight``,
``layer1.0.bn1.running_mean``, ``deconv_layers.0.weight``, ``final_layer.bias``, maybe under ``module.``)
and MMPose's (the same under ``backbone.`` and ``keypoint_head.``/``head.``). Keras layer names are the
torch module paths with dots turned into underscores, so the mapping is by name, never by position.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from livepose.atomic import replacing, write_atomic
from livepose.config import ModelConfig, WeightsConfig
from livepose.data import cache_dir
from livepose.nets.keras_net import RESNET_SPEC, build_simplebaseline, keras, model_from_npz, save_weights_npz
from livepose.nets.checkpoints import registry
from livepose.nets.checkpoints.download import download
from livepose.nets.checkpoints.torchfile import CheckpointError, load_state_dict
from livepose.nets.weights import config_from_meta, resolve

log = logging.getLogger(__name__)

#: prefixes that wrappers put before the module path: DataParallel, MMPose 0.x backbone/head, MMPose 1.x head
STRIP_PREFIXES = ("module.", "backbone.", "keypoint_head.", "head.")
#: BatchNorm buffers with no Keras counterpart
IGNORED_SUFFIXES = (".num_batches_tracked",)
BN_PARAMS = ("weight", "bias", "running_mean", "running_var")  # Keras order: gamma, beta, moving mean/var
#: torch module names that contain an underscore themselves
UNDERSCORED_MODULES = ("deconv_layers", "final_layer")
_MAX_LISTED = 8
#: weights of a checkpoint converted to .npz for LiteRT: float32 keeps the export equal to the Keras network on the
#: same checkpoint (float16, the trainer's choice, would add its rounding to every LiteRT variant)
NPZ_DTYPE = "float32"


class ArchitectureMismatchError(CheckpointError):
    """The checkpoint's tensors do not fit the model (missing, unexpected or wrongly shaped)."""


class NonFiniteWeightsError(CheckpointError):
    """The checkpoint holds NaN or infinite weights."""


def normalize_keys(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Strip wrapper prefixes and drop BatchNorm counters: the remaining keys name the official modules."""
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if key.endswith(IGNORED_SUFFIXES):
            continue
        name = key
        while name.startswith(STRIP_PREFIXES):
            name = name.split(".", 1)[1]
        if name in out:
            raise CheckpointError(f"two tensors map to {name!r} once prefixes are stripped (one is {key!r})")
        out[name] = value
    return out


def infer_config(state: dict[str, np.ndarray], input_size: tuple[int, int] | None = None) -> ModelConfig:
    """The ModelConfig a (normalized) state dict was trained with: depth from its blocks, head from shapes."""
    blocks = [0, 0, 0, 0]
    for key in state:
        m = re.match(r"layer([1-4])\.(\d+)\.", key)
        if m:
            blocks[int(m[1]) - 1] = max(blocks[int(m[1]) - 1], int(m[2]) + 1)
    kind = "bottleneck" if any(re.match(r"layer\d\.\d+\.conv3\.", k) for k in state) else "basic"
    depth = next((d for d, spec in RESNET_SPEC.items() if spec == (kind, tuple(blocks))), None)
    if depth is None:
        raise ArchitectureMismatchError(
            f"{kind} blocks per stage {tuple(blocks)} match no ResNet depth "
            f"({', '.join(f'{d}: {s[0]} {s[1]}' for d, s in RESNET_SPEC.items())}); is it a SimpleBaseline PoseResNet?"
        )
    cfg = ModelConfig(depth=depth, input_size=input_size or ModelConfig().input_size)
    deconvs = sorted(int(m[1]) for k in state if (m := re.fullmatch(r"deconv_layers\.(\d+)\.weight", k))
                     and state[k].ndim == 4)
    if deconvs:
        filters = int(state[f"deconv_layers.{deconvs[0]}.weight"].shape[1])  # torch (in, out, kh, kw)
        cfg = replace(cfg, num_deconv=len(deconvs), deconv_filters=filters)
    if "final_layer.weight" in state:
        cfg = replace(cfg, num_joints=int(state["final_layer.weight"].shape[0]))
    return cfg


def _backbone(depth: int) -> str:
    kind, blocks = RESNET_SPEC[depth]
    return f"ResNet-{depth} ({kind} blocks {blocks})"


def describe(cfg: ModelConfig) -> str:
    return f"{_backbone(cfg.depth)}, {cfg.num_deconv} deconvs, {cfg.num_joints} joints"


def describe_state(state: dict[str, np.ndarray]) -> str:
    """What a (normalized) state dict holds, from its own tensors only: ``describe(infer_config(state))`` fills a head
    the file lacks with the defaults, and called a torchvision classifier "3 deconvs, 17 joints"."""
    cfg = infer_config(state)
    head = [f"{cfg.num_deconv} deconvs"] if any(k.startswith("deconv_layers.") for k in state) else []
    head += [f"{cfg.num_joints} joints"] if "final_layer.weight" in state else []
    if head:
        return ", ".join([_backbone(cfg.depth), *head])
    classes = f" image classifier ({state['fc.weight'].shape[0]} classes)" if "fc.weight" in state else ""
    return f"a {_backbone(cfg.depth)}{classes} with no pose head"


def torch_module_path(layer_name: str) -> str:
    """Keras layer name -> torch module path: ``layer1_0_downsample_0`` -> ``layer1.0.downsample.0``."""
    head = next((m for m in UNDERSCORED_MODULES if layer_name.startswith(m)), "")
    return head + layer_name[len(head):].replace("_", ".")


def _expected(model: keras.Model) -> dict[str, tuple[keras.layers.Layer, tuple[int, ...]]]:
    """torch key -> (Keras layer, torch shape) for every weight the model needs."""
    out = {}
    for layer in model.layers:
        base = torch_module_path(layer.name)
        if isinstance(layer, keras.layers.BatchNormalization):
            for p in BN_PARAMS:
                out[f"{base}.{p}"] = (layer, (int(layer.gamma.shape[0]),))
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            kh, kw, o, i = layer.kernel.shape
            out[f"{base}.weight"] = (layer, (int(i), int(o), int(kh), int(kw)))
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, i, o = layer.kernel.shape
            out[f"{base}.weight"] = (layer, (int(o), int(i), int(kh), int(kw)))
            if layer.use_bias:
                out[f"{base}.bias"] = (layer, (int(o),))
    return out


def _listing(items: list[str]) -> str:
    more = f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return ", ".join(items[:_MAX_LISTED]) + more


def _validate(state: dict[str, np.ndarray], expected: dict, cfg: ModelConfig, source: str) -> None:
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(f"{k} {tuple(state[k].shape)} (model: {expected[k][1]})" for k in set(state) & set(expected)
                    if tuple(state[k].shape) != expected[k][1])
    if missing or unexpected or shapes:
        problems = [f"{len(missing)} missing: {_listing(missing)}" if missing else "",
                    f"{len(unexpected)} unexpected: {_listing(unexpected)}" if unexpected else "",
                    f"{len(shapes)} mis-shaped: {_listing(shapes)}" if shapes else ""]
        try:
            found = f"; the checkpoint looks like {describe_state(state)}"
        except CheckpointError:
            found = ""
        raise ArchitectureMismatchError(
            f"{source} does not fit the model {describe(cfg)}{found}: " + "; ".join(p for p in problems if p)
        )
    bad = sorted(f"{k} ({int((~np.isfinite(v)).sum())} values)" for k, v in state.items()
                 if k in expected and not np.isfinite(v).all())
    if bad:
        raise NonFiniteWeightsError(f"{source} has NaN or infinite weights in {_listing(bad)}; refusing to load")


def state_dict_to_keras(state: dict[str, np.ndarray], cfg: ModelConfig | None = None,
                        input_size: tuple[int, int] | None = None,
                        source: str = "checkpoint") -> tuple[keras.Model, ModelConfig]:
    """Build the model (``cfg``, or the one the weights imply) and load ``state`` into it, checked."""
    state = normalize_keys(state)
    cfg = cfg or infer_config(state, input_size)
    model = build_simplebaseline(cfg)
    expected = _expected(model)
    _validate(state, expected, cfg, source)
    by_layer: dict[str, list[str]] = {}
    for key, (layer, _) in expected.items():
        by_layer.setdefault(layer.name, []).append(key)
    for layer in model.layers:
        keys = by_layer.get(layer.name)
        if not keys:
            continue
        base = keys[0].rsplit(".", 1)[0]
        if isinstance(layer, keras.layers.BatchNormalization):
            values = [state[f"{base}.{p}"] for p in BN_PARAMS]
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            values = [state[f"{base}.weight"].transpose(2, 3, 1, 0)]  # (in, out, kh, kw) -> (kh, kw, out, in)
        else:
            values = [state[f"{base}.weight"].transpose(2, 3, 1, 0)]  # OIHW -> HWIO
            if layer.use_bias:
                values.append(state[f"{base}.bias"])
        layer.set_weights([np.asarray(v, np.float32) for v in values])
    return model, cfg


def _config_path(weights: Path) -> Path:
    return weights.with_name(weights.name.replace(".weights.h5", ".json"))


def save_keras(model: keras.Model, cfg: ModelConfig, path: Path, source: str) -> Path:
    """Write ``<name>.weights.h5`` and the ``<name>.json`` config it needs to be rebuilt, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(_config_path(path), json.dumps({**asdict(cfg), "source": source}, indent=1))
    with replacing(path, suffix=".weights.h5") as tmp:     # Keras insists on the extension
        model.save_weights(tmp)
    return path


def _load_keras_file(path: Path, input_size: tuple[int, int] | None) -> tuple[keras.Model, ModelConfig]:
    """A livepose ``.npz`` or a ``.weights.h5`` (architecture from the ``.json`` beside it): model and config."""
    if path.suffix == ".npz":
        ref = resolve(path)
        return model_from_npz(ref, input_size), config_from_meta(ref.meta, input_size)
    cfg_file = _config_path(path)
    if not cfg_file.exists():
        raise CheckpointError(f"{path}: no {cfg_file.name} beside it, so its architecture is unknown")
    meta = json.loads(cfg_file.read_text())
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in meta.items()
              if k in ModelConfig.__dataclass_fields__}
    cfg = ModelConfig(**fields)
    if input_size:
        cfg = replace(cfg, input_size=input_size)
    model = build_simplebaseline(cfg)
    model.load_weights(path)
    return model, cfg


def _import(path: Path, name: str | None, input_size: tuple[int, int] | None, cfg: ModelConfig | None,
            cache: Path | None) -> tuple[keras.Model, ModelConfig, Path]:
    """:func:`import_checkpoint`, also returning the config the checkpoint was built with."""
    name = name or registry.strip_sha_suffix(path.name)
    input_size = input_size or (cfg.input_size if cfg else None) or registry.input_size_from_name(name)
    if cfg is not None and input_size:
        cfg = replace(cfg, input_size=input_size)
    model, model_cfg = state_dict_to_keras(load_state_dict(path), cfg, input_size, source=str(path))
    out = save_keras(model, model_cfg, registry.keras_path(name, cache or cache_dir()), str(path))
    log.info("converted %s -> %s (%s)", path, out, describe(model_cfg))
    return model, model_cfg, out


def import_checkpoint(path: str | Path, name: str | None = None, input_size: tuple[int, int] | None = None,
                      cfg: ModelConfig | None = None, cache: Path | None = None) -> tuple[keras.Model, Path]:
    """Convert a torch checkpoint into the Keras cache; returns the model and its ``.weights.h5`` path."""
    model, _, out = _import(Path(path), name, input_size, cfg, cache)
    return model, out


def load_model_and_config(name_or_path: str | Path, input_size: tuple[int, int] | None = None,
                          cache: Path | None = None,
                          cfg: WeightsConfig = WeightsConfig()) -> tuple[keras.Model, ModelConfig]:
    """:func:`load_model`, also returning the model's config (what an ``.npz`` of it must record)."""
    text = str(name_or_path)
    if text in registry.CHECKPOINTS:
        ckpt = registry.get(text)
        root = cache or cache_dir()
        converted = registry.keras_path(ckpt.name, root)
        if converted.exists() and _config_path(converted).exists():
            return _load_keras_file(converted, input_size)
        torch_file = download(ckpt.url, registry.torch_path(ckpt, root), ckpt.sha256, ckpt.sha256_prefix, cfg)
        model, model_cfg, _ = _import(torch_file, ckpt.name, ckpt.input_size,
                                      ModelConfig(depth=ckpt.depth, input_size=ckpt.input_size), root)
        return _load_keras_file(converted, input_size) if input_size else (model, model_cfg)
    path = Path(name_or_path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file, and not a known checkpoint ({', '.join(registry.CHECKPOINTS)})")
    if path.name.endswith((".weights.h5", ".npz")):
        return _load_keras_file(path, input_size)
    model, model_cfg, _ = _import(path, None, input_size, None, cache)
    return model, model_cfg


def load_model(name_or_path: str | Path, input_size: tuple[int, int] | None = None,
               cache: Path | None = None, cfg: WeightsConfig = WeightsConfig()) -> keras.Model:
    """A ready SimpleBaseline from a registry name, a Keras weights file or a torch checkpoint.

    A registry name is served from the Keras cache, else downloaded (checksummed) and converted once.
    ``input_size`` overrides the crop size (the network is fully convolutional).
    """
    return load_model_and_config(name_or_path, input_size, cache, cfg)[0]


def save_npz(name_or_path: str | Path, dest: Path, cache: Path | None = None) -> Path:
    """A checkpoint (registry name, torch file or ``.weights.h5``) as a livepose ``.npz`` at ``dest``, atomically.

    LiteRT's exporter and cache work from ``.npz`` files (numpy metadata, one sha256); this is how a checkpoint
    gets there, through the same conversion the Keras runtime uses. The weights keep their own input size.
    """
    model, model_cfg = load_model_and_config(name_or_path, cache=cache)
    if model_cfg.num_deconv != ModelConfig.num_deconv:   # an .npz records no deconv count: it would not rebuild
        raise ArchitectureMismatchError(f"{name_or_path}: {model_cfg.num_deconv} deconvolutions; a livepose .npz "
                                        f"holds SimpleBaseline's {ModelConfig.num_deconv} only: use --runtime keras")
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_weights_npz(model, dest, model_cfg, dtype=NPZ_DTYPE)
    log.info("converted %s -> %s for LiteRT", name_or_path, dest)
    return dest
