import glob
import json
import math
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from segdet.checkpoint import load_checkpoint_file
from segdet.config import load_config
from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.data.formats import register_from_config
from segdet.engine.defaults import default_setup
from segdet.engine.train_loop import HookBase
from segdet.errors import DataError, NonFiniteLossError
from segdet.engine.trainer import Trainer
from tests.engine.conftest import read_metrics, write_tiny_config


def train(cfg, resume=False, extra_hooks=()):
    cfg = default_setup(cfg)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=resume)
    if extra_hooks:
        original = trainer.build_hooks
        trainer.build_hooks = lambda: list(extra_hooks) + original()
    results = trainer.train()
    return trainer, results


@pytest.mark.parametrize("mask_on", [True, False])
def test_few_iterations_write_checkpoints_metrics_and_evaluate(tiny_cfg_factory, mask_on):
    cfg, _ = tiny_cfg_factory(mask_on=mask_on)
    trainer, results = train(cfg)
    out = cfg.OUTPUT_DIR
    for name in ("model_0000001.pth", "model_0000003.pth", "model_final.pth", "config.yaml", "log.txt"):
        assert os.path.isfile(os.path.join(out, name)), name
    assert glob.glob(os.path.join(out, "events.out.tfevents.*"))
    records = read_metrics(out)
    assert all("iteration" in r for r in records)
    losses = [r for r in records if "total_loss" in r]
    assert losses and all(math.isfinite(r["total_loss"]) for r in losses)
    # Each checkpointed iteration (2 and 4) has its record, written before its checkpoint.
    assert {1, 3} <= {r["iteration"] for r in losses}
    expected_losses = {"loss_sem_seg"} | ({"loss_mask", "loss_classifier", "loss_objectness"} if mask_on else set())
    assert expected_losses <= set(losses[-1])
    assert any("sem_seg/mean_iou" in r for r in records)
    assert 0.0 <= results["sem_seg"]["mean_iou"] <= 1.0
    assert ("segm" in results) == mask_on and ("panoptic_seg" in results) == mask_on
    ckpt = load_checkpoint_file(os.path.join(out, "model_final.pth"))
    assert ckpt["iteration"] == 3
    assert ckpt["metadata"]["class_names"] == ["background", "orange", "lemon", "apple", "border"]
    assert "SOLVER" in ckpt["config"]
    # The loss's class weights travel with the model: none configured, so 1, and 0 for `border`.
    assert ckpt["model"]["training_class_weights"].tolist() == [1.0, 1.0, 1.0, 1.0, 0.0]


class StopAt(HookBase):
    """Asks for a clean stop after the given iteration, as SIGTERM would."""

    def __init__(self, iteration):
        self.iteration = iteration

    def after_step(self):
        if self.trainer.iter == self.iteration:
            self.trainer.stop_requested = "SIGTERM"


def test_resume_equals_straight_run(tiny_cfg_factory):
    opts = ["SOLVER.MAX_ITER", "10", "SOLVER.CHECKPOINT_PERIOD", "100", "SOLVER.STEPS", "(6,)"]
    straight_cfg, _ = tiny_cfg_factory(mask_on=True, test=(), opts=opts, name="straight")
    straight, _ = train(straight_cfg)

    split_cfg, _ = tiny_cfg_factory(mask_on=True, test=(), opts=opts, name="split")
    first, _ = train(split_cfg, extra_hooks=[StopAt(4)])  # iterations 1-5, then a clean stop
    assert os.path.isfile(os.path.join(split_cfg.OUTPUT_DIR, "model_0000004.pth"))
    assert not os.path.exists(os.path.join(split_cfg.OUTPUT_DIR, "model_final.pth"))
    second, _ = train(split_cfg, resume=True)  # iterations 6-10
    assert second.start_iter == 5

    a = straight.unwrapped_model.state_dict()
    b = second.unwrapped_model.state_dict()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), rtol=1e-4, atol=1e-5), key
    lr_a = straight.optimizer.param_groups[0]["lr"]
    assert second.optimizer.param_groups[0]["lr"] == pytest.approx(lr_a)
    # metrics.json of the resumed run holds each iteration once
    its = [r["iteration"] for r in read_metrics(split_cfg.OUTPUT_DIR) if "total_loss" in r]
    assert len(its) == len(set(its))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_cfg_factory):
    cfg, _ = tiny_cfg_factory(mask_on=False, test=(), opts=["SOLVER.MAX_ITER", "6"])
    cfg = default_setup(cfg)
    trainer = Trainer(cfg)
    model_forward = trainer.loop.model.forward
    calls = {"n": 0}

    def poisoned(batch):
        calls["n"] += 1
        losses = model_forward(batch)
        if calls["n"] == 3:  # iteration 3: after the checkpoint of iteration 2
            losses["loss_sem_seg"] = losses["loss_sem_seg"] * float("nan")
        return losses

    trainer.loop.model.forward = poisoned
    with pytest.raises(NonFiniteLossError, match="iteration 3"):
        trainer.train()
    out = cfg.OUTPUT_DIR
    assert open(os.path.join(out, "last_checkpoint")).read() == "model_0000001.pth"
    assert not os.path.exists(os.path.join(out, "model_final.pth"))
    saved = load_checkpoint_file(os.path.join(out, "model_0000001.pth"))["model"]
    assert all(torch.isfinite(v).all() for v in saved.values() if v.is_floating_point())


@pytest.fixture
def damaged_copy(tiny_fruit_root, tmp_path):
    """A copy of the tiny fruit dataset with a label value 7 in one training label file and a
    validation image cut in half; returns (cfg factory, bad training label, bad validation image)."""
    root = tmp_path / "damaged"
    shutil.copytree(tiny_fruit_root, root)
    train_label = sorted((root / "segmentation" / "train").iterdir())[1]
    values = np.array(Image.open(train_label))
    values[3, 3] = 7
    Image.fromarray(values).save(train_label)
    val_image = sorted((root / "images" / "val").iterdir())[0]
    data = val_image.read_bytes()
    val_image.write_bytes(data[:len(data) // 2])
    registered = []

    def make(opts):
        path = write_tiny_config(tmp_path / "cfg.yaml", str(root), str(tmp_path / "out"), mask_on=False)
        cfg = load_config(path, ["SOLVER.MAX_ITER", "2"] + list(opts))
        registered.extend(register_from_config(cfg))
        return cfg

    yield make, str(train_label), str(val_image)
    for name in registered:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_bad_samples_stop_training_before_it_starts(damaged_copy):
    make, train_label, val_image = damaged_copy
    cfg = default_setup(make([]))
    with pytest.raises(DataError) as info:
        Trainer(cfg)
    message = str(info.value)
    assert message.startswith(f"dataset check: 2 of 6 samples are bad, the first: label file {train_label}: "
                              "value(s) [7]")
    report = json.load(open(os.path.join(cfg.OUTPUT_DIR, "dataset_check.json")))
    assert [p["dataset"] for p in report["problems"]] == ["tiny_train", "tiny_val"]
    assert val_image in report["problems"][1]["problem"]


def test_skipped_samples_are_counted_in_metrics_and_results(damaged_copy):
    make, train_label, val_image = damaged_copy
    _, results = train(make(["DATALOADER.SKIP_BAD_SAMPLES", "True"]))
    out = make([]).OUTPUT_DIR
    assert [r["skipped_training_samples"] for r in read_metrics(out) if "skipped_training_samples" in r] == [1]
    assert results["skipped_samples"] == 1 and results["skipped_files"] == [val_image]
    saved = json.load(open(os.path.join(out, "inference", "tiny_val", "results.json")))
    assert saved["skipped_samples"] == 1 and saved["skipped_files"] == [val_image]
    # The other validation image was evaluated: its 64x64 pixels, less the ignore class, are counted.
    assert 0 < sum(map(sum, saved["sem_seg"]["pixel_confusion_matrix"])) <= 64 * 64
