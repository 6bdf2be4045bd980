"""``livepose weights list | fetch NAME | import PATH | average A B --out C``: manage weights and the checkpoint cache.

TensorFlow is imported only by ``fetch`` and ``import``, so ``list`` answers at once.
"""

from __future__ import annotations

import argparse
import logging
import sys

from livepose.commands.options import size_pair
from livepose.data import ASSETS, cache_dir
from livepose.nets.checkpoints import registry
from livepose.nets.weights import SHIPPED, average_npz, read_npz_meta

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="the shipped models, known checkpoints, their input size, depth and whether they "
                   "are cached")
    fetch = sub.add_parser("fetch", help="download a known checkpoint (checksummed) and convert it to Keras")
    fetch.add_argument("name", choices=sorted(registry.CHECKPOINTS))
    imp = sub.add_parser("import", help="convert a local PyTorch checkpoint (official or MMPose) into the cache")
    imp.add_argument("path")
    imp.add_argument("--name", help="cache name (default: the file name without its checksum and suffix)")
    imp.add_argument("--input-size", type=size_pair, help="HEIGHTxWIDTH (default: from the file name, else 256x192)")
    avg = sub.add_parser("average", help="average the weights of runs of one network (a model soup) into one .npz")
    avg.add_argument("paths", nargs="+", help="two or more .npz weights files of the same network")
    avg.add_argument("--out", required=True, help="the averaged .npz (then run `livepose calibrate` on it)")


def _list_shipped() -> None:
    print("shipped with livepose (--model NAME; nothing to download):")
    print(f"{'name':<22} {'input':>8} {'backbone':<12} file")
    for name, file in SHIPPED.items():
        try:
            meta = read_npz_meta(ASSETS / file)
            h, w = meta["input_size"]
            backbone = meta.get("backbone", "resnet")        # files older than the field are ResNets
            size, backbone = f"{h}x{w}", f"resnet-{meta['depth']}" if backbone == "resnet" else backbone
        except (OSError, ValueError, KeyError):      # a clone without the file, or a damaged one
            size, backbone, file = "", "", f"{file} (missing or unreadable)"
        print(f"{name:<22} {size:>8} {backbone:<12} {file}")


def _list() -> int:
    _list_shipped()
    root = cache_dir()
    print(f"\ncheckpoints (`livepose weights fetch NAME`), cache: {root}")
    print(f"{'name':<22} {'input':>8} {'depth':>5} {'COCO AP':>7}  cached")
    for ckpt in registry.CHECKPOINTS.values():
        keras_file = registry.keras_path(ckpt.name, root)
        state = "keras" if keras_file.exists() else "torch" if registry.torch_path(ckpt, root).exists() else "no"
        h, w = ckpt.input_size
        print(f"{ckpt.name:<22} {f'{h}x{w}':>8} {ckpt.depth:>5} {ckpt.coco_ap:>7.3f}  {state}")
    extra = sorted(p.name[: -len(".weights.h5")] for p in (root / "keras").glob("*.weights.h5")
                   if p.name[: -len(".weights.h5")] not in registry.CHECKPOINTS)
    for name in extra:
        print(f"{name:<22} {'':>8} {'':>5} {'':>7}  keras (imported)")
    return 0


def main(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list()
    if args.action == "average":
        try:
            average_npz(args.paths, args.out)
        except (OSError, ValueError) as e:
            print(f"livepose weights average: {e}", file=sys.stderr)
            return 2
        print(f"wrote {args.out}, the average of {len(args.paths)} files; calibrate it: "
              f"livepose calibrate DATASET.pose17.json --model {args.out}")
        return 0
    # TensorFlow loads with the converter: only fetch and import pay for it, so `list` answers at once
    from livepose.nets.checkpoints.convert import import_checkpoint, load_model
    from livepose.nets.checkpoints.download import DownloadError
    from livepose.nets.checkpoints.torchfile import CheckpointError

    try:
        if args.action == "fetch":
            model = load_model(args.name)
            print(f"{args.name}: ready ({model.name}) in {registry.keras_path(args.name, cache_dir())}")
        else:
            model, path = import_checkpoint(args.path, args.name, args.input_size)
            print(f"imported {args.path} -> {path} ({model.name})")
    except (DownloadError, CheckpointError, FileNotFoundError) as e:
        log.error("%s", e)
        return 1
    return 0
