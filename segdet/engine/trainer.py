"""Trainer: builds model, data, optimizer and hooks from a config, trains, and evaluates
(detectron2's DefaultTrainer, with plain builders instead of overridable magic)."""
from __future__ import annotations

import logging
import os
from collections import OrderedDict

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from segdet.checkpoint import SegdetCheckpointer, set_rng_state
from segdet.data.build import build_test_loader, build_train_loader
from segdet.data.catalog import get_dataset_dicts
from segdet.data.class_weights import resolve_class_weights
from segdet.data.mapper import DatasetMapper
from segdet.structures.metadata import Metadata
from segdet.config.experiment import instances_enabled
from segdet.data.resolve import resolve_metadata
from segdet.engine import hooks
from segdet.engine.events import make_writers
from segdet.engine.solver import build_gradient_clipper, build_lr_scheduler, build_optimizer
from segdet.engine.train_loop import SimpleTrainer
from segdet.evaluation.results import evaluate_dataset
from segdet.modeling import build_model
from segdet.utils import comm

logger = logging.getLogger("segdet.engine")


def checkpoint_extra_data(cfg, metadata: Metadata) -> dict:
    """What every checkpoint carries so that inference needs nothing else: classes and config."""
    return {"metadata": metadata.to_dict(), "config": cfg.dump()}


def test_datasets(cfg) -> "OrderedDict[str, list[dict]]":
    """The dataset dicts of each of DATASETS.TEST, loaded once (a trainer keeps them for its evaluations)."""
    return OrderedDict((name, get_dataset_dicts([name])) for name in cfg.DATASETS.TEST)


def evaluate(cfg, model: nn.Module, datasets: "OrderedDict[str, list[dict]] | None" = None
             ) -> "OrderedDict[str, dict]":
    """Evaluate the model on each of DATASETS.TEST; print tables, save JSON under OUTPUT_DIR/inference/.

    Args:
        datasets: name -> dataset dicts (`test_datasets(cfg)`); None = load them now.
    Returns:
        dataset name -> results dict (rank 0; other ranks get empty dicts).
    """
    results: "OrderedDict[str, dict]" = OrderedDict()
    for name, dicts in (datasets if datasets is not None else test_datasets(cfg)).items():
        dataset_metadata = resolve_metadata(cfg, [name])
        mapper = DatasetMapper.from_config(cfg, is_train=False, metadata=dataset_metadata)
        loader = build_test_loader(mapper, dicts, batch_size=1, num_workers=cfg.DATALOADER.NUM_WORKERS,
                                   skip_bad_samples=cfg.DATALOADER.SKIP_BAD_SAMPLES)
        results[name] = evaluate_dataset(cfg, model, loader, dataset_metadata)
    return results


def flatten_for_single_dataset(results: "OrderedDict[str, dict]") -> dict:
    """One test dataset: its results as they are ("sem_seg/mean_iou"); several: keyed by name."""
    return next(iter(results.values())) if len(results) == 1 else dict(results)


class Trainer:
    """Train a config end to end.

    Usage:
        trainer = Trainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        trainer.train()
    """

    def __init__(self, cfg):
        self.cfg = cfg
        self.metadata = resolve_metadata(cfg, list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST))
        model = build_model(cfg, self.metadata)
        self.optimizer = build_optimizer(cfg, model)
        self.scheduler = build_lr_scheduler(cfg, self.optimizer)
        self.model = model
        if comm.get_world_size() > 1:
            device_ids = [torch.cuda.current_device()] if next(model.parameters()).is_cuda else None
            # Images without instances leave the mask head unused in that step.
            self.model = DistributedDataParallel(model, device_ids=device_ids,
                                                 find_unused_parameters=instances_enabled(cfg))
        self.train_dicts = get_dataset_dicts(cfg.DATASETS.TRAIN)
        self.test_dicts = test_datasets(cfg)
        class_weights = resolve_class_weights(cfg, self.train_dicts, self.metadata, self.metadata.ignore_class_ids)
        self.mapper = DatasetMapper.from_config(cfg, is_train=True, metadata=self.metadata,
                                                class_weights=class_weights)
        # Saved with the model, for MODEL.SEM_SEG_HEAD.CLASS_WEIGHT_CORRECTION at inference.
        model.set_training_class_weights(self.mapper.class_weights)
        self.checkpointer = SegdetCheckpointer(
            model, cfg.OUTPUT_DIR, save_to_disk=comm.is_main_process(),
            extra_data=checkpoint_extra_data(cfg, self.metadata),
            optimizer=self.optimizer, scheduler=self.scheduler,
        )
        self.loop = SimpleTrainer(self.model, self._data_loader, self.optimizer, build_gradient_clipper(cfg))
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.eval_hook: hooks.EvalHook | None = None

    def _data_loader(self, start_iter: int):
        return build_train_loader(self.cfg, self.mapper, self.train_dicts, start_iter=start_iter)

    @property
    def unwrapped_model(self) -> nn.Module:
        return self.model.module if isinstance(self.model, DistributedDataParallel) else self.model

    def resume_or_load(self, resume: bool = True) -> None:
        """With `resume` and a checkpoint in OUTPUT_DIR: continue from it (weights, optimizer,
        schedule, iteration, random state). Otherwise load MODEL.WEIGHTS (if any) and start at 0."""
        data = self.checkpointer.resume_or_load(self.cfg.MODEL.WEIGHTS, resume=resume)
        if resume and self.checkpointer.has_checkpoint():
            self.start_iter = int(data.get("iteration", -1)) + 1
            if "rng_state" in data:
                set_rng_state(data["rng_state"])
            logger.info("Resuming at iteration %d", self.start_iter + 1)

    def build_hooks(self) -> list:
        cfg = self.cfg
        ret: list = [
            hooks.IterationTimer(),
            hooks.LRScheduler(self.optimizer, self.scheduler),
            hooks.PeriodicCheckpointer(self.checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD, self.max_iter),
        ]
        if cfg.DATASETS.TEST:
            self.eval_hook = hooks.EvalHook(
                cfg.TEST.EVAL_PERIOD,
                lambda: flatten_for_single_dataset(evaluate(cfg, self.unwrapped_model, self.test_dicts)),
            )
            ret.append(self.eval_hook)
            if cfg.SOLVER.BEST_CHECKPOINT_METRIC:
                ret.append(hooks.BestCheckpointer(self.checkpointer, cfg.SOLVER.BEST_CHECKPOINT_METRIC,
                                                  cfg.SOLVER.BEST_CHECKPOINT_MODE))
        ret.append(hooks.GracefulStop(self.checkpointer))
        if comm.is_main_process():
            ret.append(hooks.PeriodicWriter(make_writers(cfg.OUTPUT_DIR, self.max_iter, self.start_iter), period=20))
        return ret

    def train(self) -> dict:
        """Train from start_iter to SOLVER.MAX_ITER. Returns the last evaluation results."""
        if self.start_iter >= self.max_iter:
            logger.info("Nothing to train: the checkpoint is at iteration %d of %d", self.start_iter, self.max_iter)
            return {}
        logger.info("Training %d iterations from iteration %d", self.max_iter - self.start_iter, self.start_iter + 1)
        self.loop.register_hooks(self.build_hooks())
        self.loop.train(self.start_iter, self.max_iter)
        return self.eval_hook.latest_results if self.eval_hook else {}


def output_paths_summary(output_dir: str) -> list[str]:
    """Lines telling a person where a run's files are."""
    names = {
        "model_final.pth": "final model",
        "model_best.pth": "best model on validation",
        "metrics.json": "training metrics (one JSON object per line)",
        "config.yaml": "full config",
        "inference": "evaluation results (JSON)",
    }
    return [f"  {desc:45s} {os.path.join(output_dir, f)}" for f, desc in names.items()
            if os.path.exists(os.path.join(output_dir, f))]
