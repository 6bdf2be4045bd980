"""A resumable training loop: phases of input sizes, cosine learning rate, checkpoints outside the repo.

Checkpoints hold the model, the optimiser and the global step, so a stopped run (a session ends, Ctrl-C)
continues where it was with ``livepose train --config ...`` again.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from livepose.config import ModelConfig
from livepose.model import build_simplebaseline, keras, save_weights_npz, tf
from livepose.train.data import AugmentConfig, batches

log = logging.getLogger(__name__)


def weighted_mse(pred: tf.Tensor, target: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """The SimpleBaseline loss: 0.5 x mean squared heatmap error, joints weighted (0 = unlabelled)."""
    pred = tf.cast(pred, tf.float32)
    return 0.5 * tf.reduce_mean(tf.square(pred - target) * weights[:, None, None, :])


def phase_at(phases: list[dict], step: int) -> tuple[int, int]:
    """(phase index, last step of that phase) for a global step."""
    end = 0
    for i, ph in enumerate(phases):
        end += ph["steps"]
        if step < end:
            return i, end
    return len(phases), end


def train(config: dict, samples, workdir: Path, max_minutes: float | None = None) -> keras.Model:
    workdir.mkdir(parents=True, exist_ok=True)
    tf.config.threading.set_intra_op_parallelism_threads(config.get("threads", 2))
    if config.get("mixed_bfloat16", False):
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    cfg = ModelConfig(depth=config["depth"], input_size=(None, None))
    model = build_simplebaseline(cfg)
    total = sum(p["steps"] for p in config["phases"])
    schedule = keras.optimizers.schedules.CosineDecay(config["lr"], total, alpha=config["lr_end"] / config["lr"])
    opt = keras.optimizers.Adam(schedule)
    step = tf.Variable(0, dtype=tf.int64, name="global_step")
    ckpt = tf.train.Checkpoint(model=model, optimizer=opt, step=step)
    manager = tf.train.CheckpointManager(ckpt, str(workdir / "ckpt"), max_to_keep=2)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint)
        log.info("resumed from %s at step %d", manager.latest_checkpoint, int(step))

    @tf.function(reduce_retracing=True)
    def train_step(x, y, w):
        with tf.GradientTape() as tape:
            loss = weighted_mse(model(x, training=True), y, w)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    from livepose.model import normalize

    aug = AugmentConfig(**config.get("augment", {}))
    started = time.monotonic()
    last_save = started
    log_file = (workdir / "train_log.jsonl").open("a")
    while True:
        phase, phase_end = phase_at(config["phases"], int(step))
        if phase >= len(config["phases"]):
            break
        hw = tuple(config["phases"][phase]["input_size"])
        gen = batches(samples, hw, config["batch_size"], aug, seed=config.get("seed", 0) + int(step))
        t0, losses = time.monotonic(), []
        while int(step) < phase_end:
            crops, target, weights = next(gen)
            losses.append(float(train_step(tf.constant(normalize(crops)), tf.constant(target), tf.constant(weights))))
            step.assign_add(1)
            s = int(step)
            if s % 50 == 0:
                rate = 50 * config["batch_size"] / (time.monotonic() - t0)
                rec = {"step": s, "phase": phase, "input": list(hw), "loss": float(np.mean(losses)),
                       "lr": float(schedule(s)), "samples_per_s": round(rate, 1),
                       "minutes": round((time.monotonic() - started) / 60, 1)}
                log_file.write(json.dumps(rec) + "\n")
                log_file.flush()
                log.info("%s", rec)
                t0, losses = time.monotonic(), []
            if time.monotonic() - last_save > config.get("checkpoint_every_s", 300):
                manager.save()
                last_save = time.monotonic()
            if max_minutes is not None and time.monotonic() - started > max_minutes * 60:
                manager.save()
                log.info("stopping after %.1f min at step %d (resume with the same command)", max_minutes, s)
                return model
    manager.save()
    return model


def export(model: keras.Model, config: dict, path: Path) -> None:
    """Copy the trained weights into a fixed-size float32 model and save them as float16 ``.npz``."""
    size = tuple(config["phases"][-1]["input_size"])
    keras.mixed_precision.set_global_policy("float32")
    cfg = ModelConfig(depth=config["depth"], input_size=size)
    fixed = build_simplebaseline(cfg)
    fixed.set_weights([w.astype(np.float32) for w in model.get_weights()])
    path.parent.mkdir(parents=True, exist_ok=True)
    save_weights_npz(fixed, path, cfg)
    log.info("exported %s (%.1f MB)", path, path.stat().st_size / 1e6)
