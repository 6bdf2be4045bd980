"""A resumable training loop: phases of input sizes, cosine learning rate, checkpoints outside the repo.

Each phase builds the network at a fixed input size (on CPU, fixed shapes train 1.5x faster than dynamic
ones) and restores the latest checkpoint into it: weights, optimiser state and the global step carry over
between phases and between runs, so a stopped run (a session ends, Ctrl-C) continues where it was with
``livepose train --config ...`` again.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from pathlib import Path

import numpy as np

from livepose.config import ModelConfig
from livepose.nets.keras_net import (build_simplebaseline, freeze_backbone_bn, keras, load_weights_npz, normalize,
                                     save_weights_npz, tf)
from livepose.stopping import raise_if_requested
from livepose.train.data import AugmentConfig, batches

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]   # config paths are relative to the repository, not the working dir


def weighted_mse(pred: tf.Tensor, target: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """The SimpleBaseline loss: 0.5 x mean squared heatmap error, joints weighted (0 = unlabelled)."""
    pred = tf.cast(pred, tf.float32)
    return 0.5 * tf.reduce_mean(tf.square(pred - target) * weights[:, None, None, :])


def init_weights(config: dict, workdir: Path) -> Path:
    """The warm-start file; with ``init_rev``, the file as committed at that revision.

    Each training run exports over the shipped asset it started from, so a config names the commit whose
    asset it starts from to stay reproducible after the next run.
    """
    path = Path(config["init"])
    rev = config.get("init_rev")
    if rev is None:
        return path
    root = Path(__file__).resolve().parents[2]
    try:
        blob = subprocess.run(["git", "show", f"{rev}:{path.as_posix()}"], cwd=root, capture_output=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise FileNotFoundError(f"cannot read {path} at git revision {rev} (a git checkout of livepose is needed): "
                                f"{getattr(e, 'stderr', b'').decode().strip() or e}") from e
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"init-{rev}-{path.name}"
    out.write_bytes(blob)
    return out


def phase_at(phases: list[dict], step: int) -> tuple[int, int]:
    """(phase index, last step of that phase) for a global step."""
    end = 0
    for i, ph in enumerate(phases):
        end += ph["steps"]
        if step < end:
            return i, end
    return len(phases), end


def _build(cfg: ModelConfig, precision: str) -> keras.Model:
    """The network under a Keras dtype policy, e.g. "mixed_bfloat16" (about 1.5x faster on CPUs with AVX512_BF16).

    The policy is set only while the layers are built, so the rest of the process keeps float32. Weights stay
    float32 under a mixed policy, so checkpoints and exports do not depend on it.
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        return build_simplebaseline(cfg)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def model_config(config: dict, input_hw: tuple[int, int]) -> ModelConfig:
    """The network a training config describes (ResNet configs predate the backbone and head fields)."""
    default = ModelConfig()
    return ModelConfig(backbone=config.get("backbone", default.backbone), depth=config.get("depth", default.depth),
                       mobilenet_alpha=config.get("mobilenet_alpha", default.mobilenet_alpha),
                       deconv_filters=config.get("deconv_filters", default.deconv_filters), input_size=input_hw)


class _Trainer:
    """Model, optimiser and checkpoint for one input size."""

    def __init__(self, config: dict, input_hw: tuple[int, int], workdir: Path) -> None:
        self.cfg = model_config(config, input_hw)
        self.model = _build(self.cfg, config.get("precision", "float32"))
        if config.get("init_backbone"):
            freeze_backbone_bn(self.model)
        total = sum(p["steps"] for p in config["phases"])
        warmup = config.get("warmup_steps", 0)
        # with a warm-up, the rate climbs linearly from lr_end to lr, then follows the cosine down to lr_end
        self.schedule = keras.optimizers.schedules.CosineDecay(
            config["lr_end"] if warmup else config["lr"], max(total - warmup, 1),
            alpha=config["lr_end"] / config["lr"], warmup_target=config["lr"] if warmup else None,
            warmup_steps=warmup)
        self.opt = keras.optimizers.Adam(self.schedule)
        self.opt.build(self.model.trainable_variables)
        self.step = tf.Variable(0, dtype=tf.int64, name="global_step")
        self.ckpt = tf.train.Checkpoint(model=self.model, optimizer=self.opt, step=self.step)
        self.manager = tf.train.CheckpointManager(self.ckpt, str(workdir / "ckpt"), max_to_keep=2)
        if self.manager.latest_checkpoint:
            self.ckpt.restore(self.manager.latest_checkpoint).expect_partial()
            log.info("restored %s at step %d (%dx%d)", self.manager.latest_checkpoint, int(self.step), *input_hw)
        elif config.get("init"):       # warm start: weights of an earlier run (optimiser and step start afresh)
            path = init_weights(config, workdir)
            load_weights_npz(self.model, path)
            log.info("initialised from %s", path)
        elif config.get("init_backbone"):  # a pose-pretrained backbone; the head starts at random
            load_weights_npz(self.model, REPO / config["init_backbone"], partial=True)
            log.info("backbone initialised from %s", config["init_backbone"])

    @tf.function
    def train_step(self, x: tf.Tensor, y: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = weighted_mse(self.model(x, training=True), y, w)
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.opt.apply_gradients(zip(grads, self.model.trainable_variables))
        return loss


def train(config: dict, samples, workdir: Path, max_minutes: float | None = None,
          on_phase_end=None) -> tuple[keras.Model, ModelConfig]:
    """Run (or resume) every phase; returns the model of the last phase reached and its config.

    ``on_phase_end(model, model_cfg, phase_index)`` is called after each completed phase.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(config.get("threads", 2))
    except RuntimeError:  # TensorFlow already ran in this process (tests, an app): keep its thread pool
        log.info("TensorFlow is already initialised; training with its current thread count")
    started = time.monotonic()
    log_file = (workdir / "train_log.jsonl").open("a")
    trainer = None
    while True:
        probe = trainer or _Trainer(config, tuple(config["phases"][0]["input_size"]), workdir)
        phase, phase_end = phase_at(config["phases"], int(probe.step))
        if phase >= len(config["phases"]):
            return latest(config, workdir) if probe.cfg.input_size != _final_size(config) else (probe.model, probe.cfg)
        hw = tuple(config["phases"][phase]["input_size"])
        trainer = probe if probe.cfg.input_size == hw else _Trainer(config, hw, workdir)
        batch = config["phases"][phase].get("batch_size", config["batch_size"])
        aug = AugmentConfig(**{**config.get("augment", {}), **config["phases"][phase].get("augment", {})})
        gen = batches(samples, hw, batch, aug, seed=config.get("seed", 0) + int(trainer.step))
        try:
            done = _run_phase(trainer, gen, phase, phase_end, hw, batch, config, log_file, started, max_minutes)
        except KeyboardInterrupt:      # Ctrl-C: keep what was learnt since the last checkpoint
            trainer.manager.save()
            log.info("interrupted at step %d; checkpoint saved (resume with the same command)", int(trainer.step))
            raise
        trainer.manager.save()
        if not done:
            return trainer.model, trainer.cfg
        if on_phase_end is not None:
            on_phase_end(trainer.model, trainer.cfg, phase)


def _run_phase(trainer: _Trainer, gen, phase: int, phase_end: int, hw: tuple[int, int], batch: int,
               config: dict, log_file, started: float, max_minutes: float | None) -> bool:
    """Train until the phase ends (True) or the time budget is spent (False); checkpoints along the way."""
    t0, losses, last_save = time.monotonic(), [], time.monotonic()
    while int(trainer.step) < phase_end:
        raise_if_requested()
        crops, target, weights = next(gen)
        loss = trainer.train_step(tf.constant(normalize(crops)), tf.constant(target), tf.constant(weights))
        losses.append(float(loss))
        trainer.step.assign_add(1)
        s = int(trainer.step)
        if s % config.get("log_every", 25) == 0:
            rec = {"step": s, "phase": phase, "input": list(hw), "loss": float(np.mean(losses)),
                   "lr": float(trainer.schedule(s)), "samples_per_s": round(len(losses) * batch / (time.monotonic() - t0), 1),
                   "minutes": round((time.monotonic() - started) / 60, 1)}
            log_file.write(json.dumps(rec) + "\n")
            log_file.flush()
            log.info("%s", rec)
            t0, losses = time.monotonic(), []
        if time.monotonic() - last_save > config.get("checkpoint_every_s", 300):
            trainer.manager.save()
            last_save = time.monotonic()
        if max_minutes is not None and time.monotonic() - started > max_minutes * 60:
            log.info("stopping after %.1f min at step %d (resume with the same command)", max_minutes, s)
            return False
    return True


def _final_size(config: dict) -> tuple[int, int]:
    return tuple(config["phases"][-1]["input_size"])


def latest(config: dict, workdir: Path) -> tuple[keras.Model, ModelConfig]:
    """The latest checkpoint, in a network at the final phase's input size (the weights fit any size)."""
    trainer = _Trainer(config, _final_size(config), workdir)
    if trainer.manager.latest_checkpoint is None:
        raise FileNotFoundError(f"no checkpoint in {workdir / 'ckpt'}: train first")
    return trainer.model, trainer.cfg


def export(model: keras.Model, cfg: ModelConfig, path: Path) -> None:
    """Save trained weights as float16 ``.npz`` (half the size; accuracy is unchanged at heatmap precision)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_weights_npz(model, path, cfg)
    log.info("exported %s (%.1f MB)", path, path.stat().st_size / 1e6)
