"""Training data and the resumable loop, on real LSPet/COCO images from ../shared/data."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from livepose.data import load_pose17, read_rgb
from livepose.train.data import AugmentConfig, Sample, make_example

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lspet_sample(shared_data) -> Sample:
    path, kps, box = load_pose17(shared_data / "train_pool/lspet/annotations.pose17.json")[0]
    return Sample(read_rgb(path), kps, box)


def _peaks(target: np.ndarray) -> np.ndarray:
    h, w, j = target.shape
    flat = target.reshape(h * w, j).argmax(0)
    return np.stack([flat % w, flat // w], 1).astype(float)


def test_targets_peak_at_the_labelled_joints(lspet_sample):
    crop, target, weights = make_example(lspet_sample, (256, 192), None, np.random.default_rng(0))
    assert crop.shape == (256, 192, 3) and target.shape == (64, 48, 17)
    labelled = lspet_sample.keypoints[:, 2] > 0
    np.testing.assert_array_equal(weights > 0, labelled)  # LSPet: no face labels -> weight 0
    from livepose.crop import affine_matrix, box_to_region, transform_points

    c, s = box_to_region(lspet_sample.box[None])
    expected = transform_points(lspet_sample.keypoints[:, :2], affine_matrix(c[0], s[0], (64, 48)))
    assert np.abs(_peaks(target)[labelled] - expected[labelled]).max() <= 0.5 + 1e-6


def test_flip_swaps_left_and_right(lspet_sample):
    aug = AugmentConfig(scale=0.0, rotation=0.0, rot_prob=0.0, flip_prob=1.0, half_body_prob=0.0, colour=0.0)
    plain = make_example(lspet_sample, (256, 192), None, np.random.default_rng(0))
    flipped = make_example(lspet_sample, (256, 192), aug, np.random.default_rng(0))
    np.testing.assert_array_equal(flipped[0], plain[0][:, ::-1])
    # the image's left shoulder (5) becomes the person's right shoulder (6) after the mirror
    p, f = _peaks(plain[1]), _peaks(flipped[1])
    assert abs(f[6, 0] - (47 - p[5, 0])) <= 1 and f[6, 1] == p[5, 1]


def test_low_resolution_and_blur_soften_the_crop_but_keep_the_targets(lspet_sample):
    """The degradations change pixels only: the same joints, and a crop with less fine detail (Laplacian energy);
    switched off, they draw no random numbers, so an older recipe replays the very same crops."""
    import cv2

    base = AugmentConfig(scale=0.0, rot_prob=0.0, flip_prob=0.0, half_body_prob=0.0, colour=0.0)
    plain = make_example(lspet_sample, (256, 192), base, np.random.default_rng(3))
    softened = make_example(lspet_sample, (256, 192), replace(base, lowres_prob=1.0, lowres_min=0.3, blur_prob=1.0),
                            np.random.default_rng(3))
    np.testing.assert_array_equal(plain[1], softened[1])
    np.testing.assert_array_equal(plain[2], softened[2])

    def detail(img: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())

    assert detail(softened[0]) < 0.6 * detail(plain[0])
    again = make_example(lspet_sample, (256, 192), replace(base, blur_max=15), np.random.default_rng(3))
    np.testing.assert_array_equal(plain[0], again[0])


def test_tiny_training_run_resumes_and_exports(shared_data, tmp_path):
    """`livepose train` on a tiny config: trains, checkpoints, resumes without redoing steps, exports weights."""
    from livepose.cli import main
    from livepose.nets.load import load_network

    out = tmp_path / "tiny.npz"
    args = ["train", "--config", str(ROOT / "configs/tiny.json"), "--data", str(shared_data),
            "--workdir", str(tmp_path / "work"), "--export", str(out)]
    assert main(args) == 0
    log = [json.loads(line) for line in (tmp_path / "work/train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and [r["input"] for r in log][-1] == [256, 192]
    assert (tmp_path / "work/teacher_labels.json").exists()
    assert main(args) == 0  # resumes at the end: no further steps are logged
    assert len((tmp_path / "work/train_log.jsonl").read_text().splitlines()) == len(log)
    again = tmp_path / "again.npz"
    assert main([*args[:-2], "--export", str(again), "--export-only"]) == 0  # the latest checkpoint, no training
    from livepose.nets.weights import read_npz_meta

    assert read_npz_meta(again) == read_npz_meta(out) == {"depth": 18, "num_joints": 17, "input_size": [256, 192],
                                                           "backbone": "resnet", "deconv_filters": 256}
    net = load_network(str(out), batch_sizes=(1,))
    heatmaps = net(np.zeros((1, 256, 192, 3), np.uint8))
    assert heatmaps.shape == (1, 17, 64, 48) and np.isfinite(heatmaps).all()


def test_ctrl_c_during_training_saves_a_checkpoint_to_resume_from(shared_data, tmp_path, monkeypatch):
    """An interrupt between two checkpoints keeps the steps done since the last one."""
    from livepose.train import loop

    real_batches = loop.batches

    def one_batch_then_ctrl_c(*args, **kwargs):
        yield next(real_batches(*args, **kwargs))
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "batches", one_batch_then_ctrl_c)
    samples = [Sample(read_rgb(p), k, b)
               for p, k, b in load_pose17(shared_data / "images_gt/annotations.pose17.json")[:4]]
    config = {**json.loads((ROOT / "configs/tiny.json").read_text()), "checkpoint_every_s": 3600}
    with pytest.raises(KeyboardInterrupt):
        loop.train(config, samples, tmp_path)
    resumed = loop._Trainer(config, (128, 96), tmp_path)
    assert resumed.manager.latest_checkpoint is not None and int(resumed.step) == 1


def test_sigterm_stops_livepose_train_with_a_checkpoint(shared_data, tmp_path, monkeypatch):
    """`kill PID` reaches a background run (which ignores SIGINT) and saves like Ctrl-C; the handler is restored."""
    import os
    import signal

    from livepose.cli import main
    from livepose.train import loop

    real_batches = loop.batches

    def one_batch_then_sigterm(*args, **kwargs):
        yield next(real_batches(*args, **kwargs))
        os.kill(os.getpid(), signal.SIGTERM)
        yield next(real_batches(*args, **kwargs))

    monkeypatch.setattr(loop, "batches", one_batch_then_sigterm)
    before = signal.getsignal(signal.SIGTERM)
    work = tmp_path / "work"
    args = ["train", "--config", str(ROOT / "configs/tiny.json"), "--data", str(shared_data), "--workdir", str(work)]
    assert main(args) == 143          # 128 + SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before
    assert int(loop._Trainer(json.loads((ROOT / "configs/tiny.json").read_text()), (128, 96), work).step) == 1


def test_teacher_fixes_a_swapped_leg_chain_on_a_real_label(shared_data):
    """LSP annotators swap whole limbs; a teacher that clearly disagrees by exactly that swap corrects it."""
    from livepose.train.teacher import fix_side_swaps, merge_with_gt

    _, kps, box = next(item for item in load_pose17(shared_data / "train_pool/lspet/annotations.pose17.json")
                       if (item[1][5:, 2] > 0).all())
    teacher = kps.copy()
    teacher[:, 2] = 0.9
    legs_l, legs_r = [11, 13, 15], [12, 14, 16]
    swapped = kps.copy()
    swapped[legs_l + legs_r] = kps[legs_r + legs_l]
    diag = float(np.hypot(box[2], box[3]))
    np.testing.assert_array_equal(fix_side_swaps(swapped, teacher, diag)[:, :2], kps[:, :2])
    np.testing.assert_array_equal(fix_side_swaps(kps, teacher, diag), kps)        # agreeing labels stay
    far = teacher.copy()
    far[:, :2] += 0.3 * diag                                                       # a teacher on someone else
    np.testing.assert_array_equal(fix_side_swaps(swapped, far, diag), swapped)
    merged = merge_with_gt(swapped, teacher, diag)
    np.testing.assert_array_equal(merged[legs_l + legs_r, :2], kps[legs_l + legs_r, :2])


def test_warm_start_loads_init_weights_only_without_a_checkpoint(tmp_path):
    from livepose.config import ModelConfig
    from livepose.nets.keras_net import build_simplebaseline, save_weights_npz
    from livepose.train import loop

    cfg = ModelConfig(input_size=(128, 96))
    donor = build_simplebaseline(cfg)
    save_weights_npz(donor, tmp_path / "init.npz", cfg, dtype="float32")
    config = {**json.loads((ROOT / "configs/tiny.json").read_text()), "init": str(tmp_path / "init.npz")}
    fresh = loop._Trainer(config, (128, 96), tmp_path / "work")
    np.testing.assert_array_equal(fresh.model.get_layer("final_layer").get_weights()[0],
                                  donor.get_layer("final_layer").get_weights()[0])
    kernel = fresh.model.get_layer("final_layer").kernel
    kernel.assign(kernel + 1.0)
    fresh.manager.save()
    resumed = loop._Trainer(config, (128, 96), tmp_path / "work")             # the checkpoint wins over init
    np.testing.assert_allclose(resumed.model.get_layer("final_layer").get_weights()[0],
                               donor.get_layer("final_layer").get_weights()[0] + 1)



#: the warm-start asset each shipped config names, by its sha256 (v4 shipped in d7c208c, v6 in 7afdf1b)
INIT_WEIGHTS_SHA256 = {
    "train_resnet18.json": "27ad1eb6c377bb4b7a4ba468c60de7d186e1be27c59302b99e20f6db503cd5d5",
    "train_resnet18_256x192.json": "b1067f5d60471a97f843839c7ff6c3be60e2e360723c6bd8d04abce47334f66e",
}


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout of livepose (init_rev reads history)")
@pytest.mark.parametrize("name", sorted(INIT_WEIGHTS_SHA256))
def test_shipped_config_starts_from_the_committed_weights_it_names(tmp_path, name):
    """Each run exports over the asset it started from; ``init_rev`` keeps the chain reproducible."""
    import hashlib

    from livepose.train import loop

    config = json.loads((ROOT / "configs" / name).read_text())
    path = loop.init_weights(config, tmp_path / "work")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == INIT_WEIGHTS_SHA256[name]
    with pytest.raises(FileNotFoundError, match="git revision 0000000"):
        loop.init_weights({**config, "init_rev": "0000000"}, tmp_path / "work")
    assert loop.init_weights({"init": "some.npz"}, tmp_path) == Path("some.npz")


def test_mixed_bfloat16_trains_in_bfloat16_and_leaves_the_process_in_float32(tmp_path):
    """The 256x192 config trains under mixed_bfloat16; weights (and so checkpoints and exports) stay float32."""
    from livepose.nets.keras_net import keras, tf
    from livepose.train import loop

    config = {**json.loads((ROOT / "configs/tiny.json").read_text()), "precision": "mixed_bfloat16"}
    trainer = loop._Trainer(config, (128, 96), tmp_path / "work")
    assert keras.mixed_precision.global_policy().name == "float32"
    conv = trainer.model.get_layer("conv1")
    assert (conv.compute_dtype, conv.kernel.dtype) == ("bfloat16", "float32")
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2, 128, 96, 3)).astype(np.float32))
    y = tf.constant(rng.uniform(size=(2, 32, 24, 17)).astype(np.float32))
    before = trainer.model.get_layer("final_layer").get_weights()[0].copy()
    loss = float(trainer.train_step(x, y, tf.ones((2, 17))))
    assert np.isfinite(loss) and loss > 0
    assert not np.array_equal(trainer.model.get_layer("final_layer").get_weights()[0], before)


def test_coco_person_boxes_reads_boxes_and_skips_crowds(tmp_path):
    """The COCO-format box source (configs' ``data.coco``): every non-crowd person box, named by its image file."""
    from livepose.train.labels import coco_person_boxes

    ann = tmp_path / "person_keypoints.json"
    ann.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.png"}],
        "annotations": [{"image_id": 1, "bbox": [10, 20, 30, 60], "iscrowd": 0},
                        {"image_id": 2, "bbox": [0, 0, 100, 100], "iscrowd": 1},
                        {"image_id": 2, "bbox": [5.5, 6, 7, 8]},
                        {"image_id": 9, "bbox": [1, 2, 3, 4]}]}))   # an image the file does not list
    assert coco_person_boxes(tmp_path / "img", ann) == [(tmp_path / "img" / "a.jpg", [10.0, 20.0, 30.0, 60.0]),
                                                        (tmp_path / "img" / "b.png", [5.5, 6.0, 7.0, 8.0])]


def test_teacher_labelling_keeps_litert_chatter_off_the_terminal(shared_data, capfd, monkeypatch):
    """Each labelling worker builds MoveNet once; LiteRT printed its delegate line above `livepose train`'s
    progress bar (seen 2026-12-08). The worker's real teacher labels a real image, and fd 2 stays clean."""
    from livepose.train import labels

    monkeypatch.setattr(labels, "_teacher", None)          # a fresh worker
    image = sorted((shared_data / "images_gt/coco_val2017").glob("*.jpg"))[0]
    kps = labels._label_one(("movenet", (str(image), None, None)))
    assert kps is not None and len(kps) == 17
    assert "XNNPACK" not in capfd.readouterr().err
