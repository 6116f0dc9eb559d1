"""model_best.pth across resumes: a worse evaluation after a resume never replaces a better model."""
import json
import os

import pytest
import torch

from segdet.checkpoint import SegdetCheckpointer, load_checkpoint_file
from segdet.engine.hooks import BestCheckpointer
from segdet.engine.train_loop import TrainerBase

METRIC = "sem_seg/mean_iou"


class Evaluations(TrainerBase):
    """A trainer whose iterations only 'evaluate': the metric takes the given value at the given
    iterations (as EvalHook stores it)."""

    def __init__(self, values: dict[int, float]):
        super().__init__()
        self.values = values

    def run_step(self):
        if self.iter in self.values:
            self.storage.put_scalar(METRIC, self.values[self.iter], smoothing_hint=False)


def _run(folder, start, end, values, mode="max"):
    checkpointer = SegdetCheckpointer(torch.nn.Linear(2, 2), str(folder))
    trainer = Evaluations(values)
    trainer.register_hooks([BestCheckpointer(checkpointer, METRIC, mode)])
    trainer.train(start, end)


def _best(folder):
    """(iteration of model_best.pth, (value, iteration) in best_metric.json)."""
    record = json.load(open(os.path.join(folder, "best_metric.json")))
    return load_checkpoint_file(os.path.join(folder, "model_best.pth"))["iteration"], \
        (record["value"], record["iteration"])


def test_a_worse_evaluation_after_a_resume_keeps_the_better_model(tmp_path):
    _run(tmp_path, 0, 5, {1: 0.5, 3: 0.8, 4: 0.7})
    assert _best(tmp_path) == (3, (0.8, 3))
    _run(tmp_path, 5, 10, {6: 0.6})  # resumed at iteration 5: 0.6 is worse than 0.8
    assert _best(tmp_path) == (3, (0.8, 3))
    _run(tmp_path, 10, 12, {11: 0.9})
    assert _best(tmp_path) == (11, (0.9, 11))
    record = json.load(open(tmp_path / "best_metric.json"))
    assert record == {"metric": METRIC, "mode": "max", "value": 0.9, "iteration": 11}
    assert load_checkpoint_file(str(tmp_path / "model_best.pth"))["best_metric"] == record


def test_the_value_in_model_best_counts_when_best_metric_json_is_older(tmp_path):
    _run(tmp_path, 0, 5, {1: 0.5, 3: 0.8})
    # A kill after writing model_best.pth (0.8) but before best_metric.json: the JSON still says 0.5.
    record = tmp_path / "best_metric.json"
    record.write_text(json.dumps({"metric": METRIC, "mode": "max", "value": 0.5, "iteration": 1}))
    model_time = os.stat(tmp_path / "model_best.pth").st_mtime_ns
    os.utime(record, ns=(model_time - 10**9, model_time - 10**9))
    _run(tmp_path, 5, 10, {6: 0.6})
    assert _best(tmp_path)[0] == 3


@pytest.mark.parametrize("change", ["fresh run", "other metric"])
def test_a_fresh_run_or_another_metric_starts_anew(tmp_path, change):
    _run(tmp_path, 0, 5, {3: 0.8})
    if change == "fresh run":
        _run(tmp_path, 0, 5, {2: 0.6})  # not resumed: the old folder's best does not count
        assert _best(tmp_path)[0] == 2
    else:
        _run(tmp_path, 5, 10, {6: 0.9}, mode="min")  # (the same name chosen the other way)
        assert _best(tmp_path)[0] == 6
