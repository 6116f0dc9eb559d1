"""The evaluator protocol (detectron2's) and the loop that runs a model over a dataset."""
from __future__ import annotations

import logging
from typing import Iterable, Sequence

import torch

from segdet.utils import comm
from segdet.utils.progress import Progress

logger = logging.getLogger(__name__)


class DatasetEvaluator:
    """Accumulates what a model produced over a dataset and computes measures from it.

    `reset()` before a run, `process(inputs, outputs)` after every batch, and
    `evaluate()` at the end. In a multi-process run `evaluate()` gathers the state
    of all ranks itself (through `segdet.utils.comm.all_gather`) and returns the
    results on the main process ({} elsewhere).
    """

    def reset(self) -> None:
        """Forget everything processed so far."""

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        """Take one batch: the model's input dicts and its output dicts, in the same order."""

    def evaluate(self) -> dict:
        """Results as {task: {measure: value}}, e.g. {"sem_seg": {"mean_iou": 0.7, ...}}."""
        return {}


class DatasetEvaluators(DatasetEvaluator):
    """Several evaluators used as one; their results are merged (task names must differ)."""

    def __init__(self, evaluators: Sequence[DatasetEvaluator]):
        self._evaluators = list(evaluators)

    @property
    def evaluators(self) -> list[DatasetEvaluator]:
        return list(self._evaluators)

    def reset(self) -> None:
        for evaluator in self._evaluators:
            evaluator.reset()

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        for evaluator in self._evaluators:
            evaluator.process(inputs, outputs)

    def evaluate(self) -> dict:
        results: dict = {}
        for evaluator in self._evaluators:
            found = evaluator.evaluate() or {}
            if comm.is_main_process():
                for task, value in found.items():
                    if task in results:
                        raise ValueError(
                            f"two evaluators both report results under '{task}' "
                            f"({type(evaluator).__name__} is the second)"
                        )
                    results[task] = value
        return results


def _count(data_loader: Iterable) -> int:
    try:
        return len(data_loader)  # type: ignore[arg-type]
    except TypeError:
        return 0


def inference_on_dataset(
    model: torch.nn.Module,
    data_loader: Iterable[list[dict]],
    evaluator: DatasetEvaluator | Sequence[DatasetEvaluator] | None,
) -> dict:
    """Run `model` on every batch of `data_loader` and evaluate its outputs.

    The model runs in eval mode under `torch.no_grad()`; its previous mode is
    restored afterwards, also when something fails. A progress line with an ETA is
    logged while it runs.

    Args:
        model: called as `model(inputs)` with a list of input dicts; returns a list of output dicts.
        data_loader: yields lists of model input dicts.
        evaluator: one evaluator, a list of them (combined), or None (just run the model).
    Returns:
        The evaluators' results on the main process; {} on the others.
    """
    if evaluator is None:
        evaluator = DatasetEvaluators([])
    elif not isinstance(evaluator, DatasetEvaluator):
        evaluator = DatasetEvaluators(list(evaluator))
    evaluator.reset()

    total = _count(data_loader)
    logger.info("Start inference on %s batches", total if total else "an unknown number of")
    progress = Progress(total, "Inference", logger=logger, unit="batches")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for inputs in data_loader:
                outputs = model(inputs)
                evaluator.process(inputs, outputs)
                progress.step()
    finally:
        model.train(was_training)
    progress.done()

    comm.synchronize()
    results = evaluator.evaluate()
    # Non-main processes may return None; callers can always index the result.
    return results if results is not None else {}


__all__ = ["DatasetEvaluator", "DatasetEvaluators", "inference_on_dataset"]
