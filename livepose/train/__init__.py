"""`livepose train --config CONFIG.json`: reproduce the shipped SimpleBaseline weights (resumable)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from livepose.data import cache_dir, data_root



def default_workdir(name: str) -> Path:
    """Checkpoints live in livepose's cache (outside the repo), beside the downloaded and exported models."""
    return cache_dir() / "train" / name


def default_repos() -> Path:
    """Fetched training repositories live in livepose's cache too (``<cache>/repos/owner+name``)."""
    return cache_dir() / "repos"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="training config (JSON), e.g. configs/train_resnet18.json")
    p.add_argument("--data", type=Path, default=data_root(), help="root of the data set folder (default: ../shared/data)")
    p.add_argument("--repos", type=Path, help="where fetched training repositories live (the config's 'voc' "
                   "sources; default: the cache dir's repos/)")
    p.add_argument("--workdir", type=Path, help="checkpoints and logs (default: the cache dir, outside the repo)")
    p.add_argument("--max-minutes", type=float, help="stop (checkpointed) after this long; run again to resume")
    p.add_argument("--export", type=Path, help="where to write the final weights (default: the config's 'export')")
    p.add_argument("--export-only", action="store_true", help="export the latest checkpoint without training")


def main(args: argparse.Namespace) -> int:
    # TensorFlow and the teachers load with these (seconds): not for `livepose train --help`
    from livepose.train.labels import build_samples
    from livepose.train.loop import export, latest, train

    config = json.loads(args.config.read_text())
    workdir = args.workdir or default_workdir(config["name"])
    workdir.mkdir(parents=True, exist_ok=True)
    if args.export_only:
        export(*latest(config, workdir), args.export or Path(config["export"]))
        return 0
    repos = args.repos or default_repos()
    samples = build_samples(args.data, config["data"], workdir / "teacher_labels.json", repos)

    def phase_done(model, model_cfg, phase: int) -> None:
        if config["phases"][phase].get("export"):
            export(model, model_cfg, Path(config["phases"][phase]["export"]))

    try:
        model, model_cfg = train(config, samples, workdir, args.max_minutes, on_phase_end=phase_done)
    except KeyboardInterrupt:
        print(f"livepose train: interrupted; checkpoint saved in {workdir}; run the same command to resume")
        return 130
    out = args.export or Path(config["export"])
    export(model, model_cfg, out)
    return report_accuracy(out, args.data, config["data"]) if config.get("evaluate", True) else 0


def report_accuracy(weights: Path, data_root: Path, spec: dict) -> int:
    """After a run (finished or stopped by its budget): PCK on images_gt and on the held-out end of the pool,
    with GT boxes, so every run ends with the figures its ship rule needs."""
    from livepose.cli import main as cli   # the `eval` command as a user runs it; cli imports this package lazily

    sets = [[str(data_root / "images_gt" / "annotations.pose17.json")]]
    if spec.get("holdout_last"):
        sets += [[str(data_root / rel), "--last", str(spec["holdout_last"])] for rel in spec.get("pose17", [])]
    for dataset in sets:
        rc = cli(["eval", *dataset, "--model", str(weights), "--boxes", "gt", "--no-rival", "--runtime", "keras"])
        if rc:
            return rc
    return 0
