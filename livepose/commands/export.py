"""`livepose export`: convert a weights file to LiteRT fp32/fp16/dynamic/int8/int8_hires_float, check and time each
variant."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from livepose.commands.options import size_pair
from livepose.config import LiteConfig
from livepose.nets.checkpoints.download import DownloadError
from livepose.nets.export import export
from livepose.nets.lite_cache import PRECISIONS, choose_precision, lite_dir
from livepose.nets.load import lite_weights
from livepose.nets.weights import resolve
from livepose.quiet import native_chatter_filtered


def _parse_list(text: str, cast: type = str) -> tuple:
    return tuple(cast(v) for v in text.split(",") if v)


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = LiteConfig()
    p.add_argument("--model", default="default", help="'default' (shipped weights), a .npz weights file, or a "
                   "checkpoint (torch file, .weights.h5, registry name), converted to .npz once")
    p.add_argument("--precision", default=",".join(d.precisions), help="comma-separated: " + ",".join(PRECISIONS))
    p.add_argument("--batch-sizes", default=",".join(map(str, d.batch_sizes)), help="fixed batch sizes, e.g. 1,2,4")
    p.add_argument("--input-size", type=size_pair,
                   help="network input HxW, e.g. 256x192, multiples of 32 (default: the weights' own size)")
    p.add_argument("--out-dir", type=Path, help="where the .tflite files and manifest.json go "
                   "(default: the cache the runtime reads, $LIVEPOSE_CACHE/lite/<weights sha>/<HxW>)")
    p.add_argument("--data", type=Path, default=None, help="real data root for calibration and the accuracy check "
                   "(default: ../shared/data or $LIVEPOSE_SHARED_DATA)")
    p.add_argument("--no-phase-deconv", action="store_true", help="keep Conv2DTranspose (slower in LiteRT)")
    p.add_argument("--threads", type=int, default=d.num_threads)
    p.add_argument("--calibration-crops", type=int, default=d.calibration_crops,
                   help="int8: real person crops for post-training quantisation")
    p.add_argument("--float-height-share", type=float, default=d.float_height_share,
                   help="int8_hires_float: ops whose output is at least this share of the input's height stay float32")
    p.add_argument("--bench-runs", type=int, default=d.bench_runs, help="timed invocations per batch size")


def main(args: argparse.Namespace) -> int:
    precisions = _parse_list(args.precision)
    unknown = sorted(set(precisions) - set(PRECISIONS))
    if unknown:
        print(f"livepose export: unknown precision {unknown}; choose from {','.join(PRECISIONS)}", file=sys.stderr)
        return 2
    cfg = replace(LiteConfig(), precisions=precisions, batch_sizes=_parse_list(args.batch_sizes, int),
                  phase_deconv=not args.no_phase_deconv, num_threads=args.threads,
                  calibration_crops=args.calibration_crops, float_height_share=args.float_height_share,
                  bench_runs=args.bench_runs)
    size = args.input_size
    try:
        ref = lite_weights(resolve(args.model))
        out_dir = args.out_dir or lite_dir(ref, size)
        # on stderr, which a network's first LiteRT start (this command in a child) shows: otherwise it waits minutes
        # in silence; stdout is the result table
        print(f"exporting {','.join(precisions)} at batch sizes {','.join(map(str, cfg.batch_sizes))} into {out_dir}, "
              f"each checked against Keras on real people (minutes)", file=sys.stderr, flush=True)
        with native_chatter_filtered():   # the converter's advice, warnings and per-variant lines (--verbose: all)
            manifest = export(ref, out_dir, size, cfg, args.data)
    except (OSError, ValueError, DownloadError) as exc:   # bad weights, an unfetchable checkpoint, no int8 data
        print(f"livepose export: {exc}", file=sys.stderr)
        return 2
    print(f"{out_dir}  (input {manifest['input_size'][0]}x{manifest['input_size'][1]}; ms per crop, "
          f"{cfg.num_threads} threads)")
    batches = [str(b) for b in cfg.batch_sizes]
    width = max(map(len, ["variant", *manifest["variants"]]))
    print(f"{'variant':{width}s} " + " ".join(f"{'b' + b:>7s}" for b in batches) + "   PCK  dPCK  agree  dist_hm")
    print(f"{'keras':{width}s} " + " ".join(f"{manifest['keras_ms_per_crop'][b]:7.1f}" for b in batches))
    for precision, v in manifest["variants"].items():
        acc = v["accuracy"]
        tail = (f" {acc['pck']:5.3f} {acc['pck_delta']:+5.3f} {acc['agreement']:6.3f} {acc['mean_dist_hm_px']:7.3f}"
                if acc else "  (no accuracy check)")
        print(f"{precision:{width}s} " + " ".join(f"{v['ms_per_crop'].get(b, float('nan')):7.1f}" for b in batches)
              + tail)
    print(f"automatic choice: {choose_precision(manifest, LiteConfig().max_pck_loss)}")
    return 0
