"""Trainer: builds model, data, optimizer and hooks from a config, trains, and evaluates
(detectron2's DefaultTrainer, with plain builders instead of overridable magic)."""
from __future__ import annotations

import contextlib
import logging
import os
from collections import OrderedDict
from typing import Mapping, Optional, Sequence

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from segdet.checkpoint import SegdetCheckpointer, resume_candidates, set_rng_state
from segdet.data.build import build_test_loader, build_train_loader
from segdet.data.catalog import DatasetCatalog
from segdet.data.check import CheckReport, preflight_check
from segdet.data.class_weights import resolve_class_weights
from segdet.data.mapper import DatasetMapper
from segdet.structures.metadata import Metadata
from segdet.config.experiment import instances_enabled
from segdet.data.resolve import resolve_metadata
from segdet.engine import hooks
from segdet.engine.ema import ModelEMA
from segdet.engine.events import JSONWriter, make_writers
from segdet.engine.solver import build_gradient_clipper, build_lr_scheduler, build_optimizer
from segdet.engine.train_loop import SimpleTrainer
from segdet.errors import CheckpointError, DataError
from segdet.evaluation.results import evaluate_dataset
from segdet.modeling import build_model
from segdet.utils import comm
from segdet.utils.precision import autocast_dtype

logger = logging.getLogger("segdet.engine")


def checkpoint_extra_data(cfg, metadata: Metadata) -> dict:
    """What every checkpoint carries so that inference needs nothing else: classes and config."""
    return {"metadata": metadata.to_dict(), "config": cfg.dump()}


def dataset_dicts_by_name(names: Sequence[str]) -> "OrderedDict[str, list[dict]]":
    """Each named dataset's dicts (an unknown or empty dataset is a DataError)."""
    return OrderedDict((name, DatasetCatalog.get(name)) for name in names)


def checked_datasets(cfg, names: Sequence[str]) -> tuple["OrderedDict[str, list[dict]]", dict[str, list[str]],
                                                         Optional[CheckReport]]:
    """The named datasets after the pre-flight check (DATALOADER.CHECK_DATASET): their good dicts,
    and the image files left out of each (DATALOADER.SKIP_BAD_SAMPLES; without it a bad sample
    is a DataError). Returns (name -> dicts, name -> left-out files, the check or None)."""
    dicts = dataset_dicts_by_name(names)
    left_out: dict[str, list[str]] = {name: [] for name in dicts}
    if not cfg.DATALOADER.CHECK_DATASET:
        return dicts, left_out, None
    report = preflight_check(cfg, dicts)
    for name in dicts:
        check = report.by_name(name)
        left_out[name] = check.bad_files(dicts[name])
        dicts[name] = check.good_samples(dicts[name])
    return dicts, left_out, report


def evaluate(cfg, model: nn.Module, datasets: Optional[Mapping[str, list[dict]]] = None,
             left_out: Optional[Mapping[str, Sequence[str]]] = None) -> "OrderedDict[str, dict]":
    """Evaluate the model on each of DATASETS.TEST; print tables, save JSON under OUTPUT_DIR/inference/.

    Args:
        datasets: name -> the dicts to evaluate (a trainer's checked test sets, loaded once);
            None = load and check the test sets now (DATALOADER.CHECK_DATASET).
        left_out: name -> image files left out of `datasets` (found bad by the check), counted in
            the results.
    Returns:
        dataset name -> results dict (rank 0; other ranks get empty dicts). A dataset whose
        samples were skipped has `skipped_samples` (a count) and `skipped_files` in its results.
    """
    if datasets is None:
        datasets, left_out, _ = checked_datasets(cfg, cfg.DATASETS.TEST)
    left_out = left_out or {}
    results: "OrderedDict[str, dict]" = OrderedDict()
    for name, dicts in datasets.items():
        dataset_metadata = resolve_metadata(cfg, [name])
        mapper = DatasetMapper.from_config(cfg, is_train=False, metadata=dataset_metadata)
        loader = build_test_loader(mapper, dicts, batch_size=1, num_workers=cfg.DATALOADER.NUM_WORKERS,
                                   skip_bad_samples=cfg.DATALOADER.SKIP_BAD_SAMPLES)
        results[name] = evaluate_dataset(cfg, model, loader, dataset_metadata,
                                         left_out=sorted(left_out.get(name, ())))
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
        # The data first: a bad file is reported before the model is built.
        class_pixels = self._load_datasets()
        model = build_model(cfg, self.metadata)
        self.optimizer = build_optimizer(cfg, model)
        self.scheduler = build_lr_scheduler(cfg, self.optimizer)
        self.model = model
        if comm.get_world_size() > 1:
            device_ids = [torch.cuda.current_device()] if next(model.parameters()).is_cuda else None
            # Images without instances leave the mask head unused in that step.
            self.model = DistributedDataParallel(model, device_ids=device_ids,
                                                 find_unused_parameters=instances_enabled(cfg))
        class_weights = resolve_class_weights(cfg, self.train_dicts, self.metadata, self.metadata.ignore_class_ids,
                                              class_pixels=class_pixels)
        self.mapper = DatasetMapper.from_config(cfg, is_train=True, metadata=self.metadata,
                                                class_weights=class_weights)
        # Saved with the model, for MODEL.SEM_SEG_HEAD.CLASS_WEIGHT_CORRECTION at inference.
        model.set_training_class_weights(self.mapper.class_weights)
        # MODEL.EMA: the averaged weights, saved in every checkpoint (inference loads them).
        self.ema = ModelEMA(model, cfg.MODEL.EMA.DECAY) if cfg.MODEL.EMA.ENABLED else None
        self.checkpointer = SegdetCheckpointer(
            model, cfg.OUTPUT_DIR, save_to_disk=comm.is_main_process(),
            extra_data=checkpoint_extra_data(cfg, self.metadata),
            optimizer=self.optimizer, scheduler=self.scheduler, **({"ema": self.ema} if self.ema else {}),
        )
        amp = autocast_dtype(cfg.SOLVER.AMP.ENABLED, cfg.SOLVER.AMP.DTYPE, next(model.parameters()).device)
        self.loop = SimpleTrainer(self.model, self._data_loader, self.optimizer, build_gradient_clipper(cfg), amp)
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.eval_hook: hooks.EvalHook | None = None

    def _load_datasets(self) -> Optional[list]:
        """Set train_dicts, train_left_out and test_left_out after the pre-flight check of the
        training and test sets (a bad test file found at the first evaluation would end a run
        hours in). Returns the check's class pixel counts of the training labels, or None."""
        cfg = self.cfg
        if not cfg.DATASETS.TRAIN:
            raise DataError("no dataset to train on: DATASETS.TRAIN is empty")
        datasets, left_out, report = checked_datasets(cfg, list(dict.fromkeys(cfg.DATASETS.TRAIN + cfg.DATASETS.TEST)))
        self.train_dicts = [d for name in cfg.DATASETS.TRAIN for d in datasets[name]]
        self.train_left_out = [f for name in dict.fromkeys(cfg.DATASETS.TRAIN) for f in left_out[name]]
        # The checked test sets are kept for every evaluation of the run.
        self.test_dicts = OrderedDict((name, datasets[name]) for name in cfg.DATASETS.TEST)
        self.test_left_out = {name: left_out[name] for name in cfg.DATASETS.TEST}
        if report is None:
            return None
        # Class weights "auto" need not read the label files again.
        class_pixels = [c for name in cfg.DATASETS.TRAIN for c in report.by_name(name).good_class_pixels()]
        return None if any(c is None for c in class_pixels) else class_pixels

    def _data_loader(self, start_iter: int):
        return build_train_loader(self.cfg, self.mapper, self.train_dicts, start_iter=start_iter)

    @property
    def unwrapped_model(self) -> nn.Module:
        return self.model.module if isinstance(self.model, DistributedDataParallel) else self.model

    def resume_or_load(self, resume: bool = True) -> None:
        """With `resume` and a checkpoint in OUTPUT_DIR: continue from the newest one that loads
        (weights, optimizer, schedule, iteration, random state). Otherwise load MODEL.WEIGHTS
        (if any) and start at 0."""
        if resume and resume_candidates(self.cfg.OUTPUT_DIR):
            data = self.checkpointer.resume()
            if data is None:
                raise CheckpointError(
                    f"--resume: no checkpoint in {self.cfg.OUTPUT_DIR} loads (see the warnings above); move them "
                    "away to start again, or give MODEL.WEIGHTS without --resume"
                )
            self.start_iter = int(data.get("iteration", -1)) + 1
            if "rng_state" in data:
                set_rng_state(data["rng_state"])
            logger.info("Resuming at iteration %d", self.start_iter + 1)
            return
        self.checkpointer.load(self.cfg.MODEL.WEIGHTS, checkpointables=[])

    def build_hooks(self) -> list:
        cfg = self.cfg
        writers = make_writers(cfg.OUTPUT_DIR, self.max_iter, self.start_iter) if comm.is_main_process() else []
        ret: list = [hooks.IterationTimer(), hooks.LRScheduler(self.optimizer, self.scheduler)]
        if self.ema is not None:
            ret.append(hooks.EMAUpdate(self.ema, self.unwrapped_model))
        # Evaluation before the checkpoint of its iteration (see EvalHook).
        if cfg.DATASETS.TEST:
            self.eval_hook = hooks.EvalHook(cfg.TEST.EVAL_PERIOD, self._evaluate)
            ret.append(self.eval_hook)
            if cfg.SOLVER.BEST_CHECKPOINT_METRIC:
                ret.append(hooks.BestCheckpointer(self.checkpointer, cfg.SOLVER.BEST_CHECKPOINT_METRIC,
                                                  cfg.SOLVER.BEST_CHECKPOINT_MODE))
        ret += [hooks.PeriodicCheckpointer(self.checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD, self.max_iter,
                                           writers_first=[w for w in writers if isinstance(w, JSONWriter)]),
                hooks.GracefulStop(), hooks.StopCheckpointer(self.checkpointer),
                hooks.SkippedSamples(self.train_left_out)]
        if writers:
            ret.append(hooks.PeriodicWriter(writers, period=20))
        return ret

    def _evaluate(self) -> dict:
        """The periodic evaluation, of the averaged weights when MODEL.EMA is on."""
        model = self.unwrapped_model
        with self.ema.applied(model) if self.ema is not None else contextlib.nullcontext():
            return flatten_for_single_dataset(evaluate(self.cfg, model, self.test_dicts, self.test_left_out))

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
