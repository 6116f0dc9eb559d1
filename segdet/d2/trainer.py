"""SegdetTrainer: detectron2's DefaultTrainer with segdet's loaders, evaluators and model files."""
from __future__ import annotations

import weakref

import torch
from detectron2.engine import DefaultTrainer, hooks
from detectron2.solver.build import (
    _generate_optimizer_class_with_gradient_clipping,
    get_default_optimizer_params,
    maybe_add_gradient_clipping,
)
from torch.nn.parallel import DistributedDataParallel

from segdet.d2.checkpoint import SegdetCheckpointer, inference_data
from segdet.d2.evaluation import build_evaluator
from segdet.d2.loaders import build_test_loader, build_train_loader, with_class_weights
from segdet.errors import ConfigError
from segdet.evaluation.results import save_results


class SegdetTrainer(DefaultTrainer):
    """DefaultTrainer for segdet's meta-architectures (SegdetPanopticFPN, SegdetSemanticSegmentor).

    Besides detectron2's keys it reads segdet's: INPUT.CLASS_WEIGHTS (computed once, recorded in the
    model for the class weight correction), SOLVER.OPTIMIZER ("SGD" or "ADAMW"),
    SOLVER.BEST_CHECKPOINT_METRIC / MODE, and what the mapper and the evaluators read.
    """

    def __init__(self, cfg):
        cfg = with_class_weights(cfg)
        super().__init__(cfg)
        if cfg.INPUT.CLASS_WEIGHTS is not None:
            self.segdet_model.set_training_class_weights(cfg.INPUT.CLASS_WEIGHTS)

    @property
    def segdet_model(self) -> torch.nn.Module:
        model = self.model.module if isinstance(self.model, DistributedDataParallel) else self.model
        if not hasattr(model, "metadata"):
            raise ConfigError(f"MODEL.META_ARCHITECTURE = {self.cfg.MODEL.META_ARCHITECTURE}: SegdetTrainer trains "
                              "segdet's meta-architectures, SegdetPanopticFPN or SegdetSemanticSegmentor")
        return model

    @classmethod
    def build_optimizer(cls, cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
        """detectron2's SGD, or AdamW (SOLVER.OPTIMIZER), with SOLVER.CLIP_GRADIENTS. CLIP_TYPE
        "full_model" clips the norm of all gradients together (what segdet's own trainer does for
        "norm", and later detectron2 versions call "full_model"); this detectron2's "norm" clips
        each parameter's gradient by itself."""
        clip = cfg.SOLVER.CLIP_GRADIENTS
        global_norm = clip.ENABLED and clip.CLIP_TYPE == "full_model"
        if global_norm:
            cfg = cfg.clone()
            cfg.defrost()
            cfg.SOLVER.CLIP_GRADIENTS.ENABLED = False  # detectron2's own wrapper knows no "full_model"
        if cfg.SOLVER.OPTIMIZER != "ADAMW":
            optimizer = super().build_optimizer(cfg, model)
        else:
            params = get_default_optimizer_params(model, base_lr=cfg.SOLVER.BASE_LR,
                                                  weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
                                                  bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
                                                  weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS)
            optimizer = maybe_add_gradient_clipping(
                cfg, torch.optim.AdamW(params, lr=cfg.SOLVER.BASE_LR, weight_decay=cfg.SOLVER.WEIGHT_DECAY))
        if global_norm:
            optimizer.__class__ = _generate_optimizer_class_with_gradient_clipping(
                type(optimizer),
                global_clipper=lambda params: torch.nn.utils.clip_grad_norm_(list(params), clip.CLIP_VALUE,
                                                                             clip.NORM_TYPE))
        return optimizer

    @classmethod
    def build_train_loader(cls, cfg):
        return build_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name: str):
        return build_test_loader(cfg, dataset_name)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name: str, output_folder: str | None = None):
        return build_evaluator(cfg, dataset_name, output_folder)

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        """detectron2's test, and each dataset's results in `OUTPUT_DIR/inference/<dataset>/results.json`."""
        results = super().test(cfg, model, evaluators)
        names = list(cfg.DATASETS.TEST)
        for name, found in (zip(names, [results]) if len(names) == 1 else results.items()):
            save_results(found, cfg.OUTPUT_DIR, name)
        return results

    def build_hooks(self) -> list:
        # DefaultTrainer has no builder for its checkpointer: it is replaced here, before the
        # checkpointing hooks take it.
        self.checkpointer = SegdetCheckpointer(self.model, self.cfg.OUTPUT_DIR,
                                               extra_data=inference_data(self.cfg, self.segdet_model.metadata),
                                               trainer=weakref.proxy(self))
        ret = super().build_hooks()
        if self.cfg.SOLVER.BEST_CHECKPOINT_METRIC:
            ret.append(hooks.BestCheckpointer(self.cfg.TEST.EVAL_PERIOD, self.checkpointer,
                                              self.cfg.SOLVER.BEST_CHECKPOINT_METRIC,
                                              self.cfg.SOLVER.BEST_CHECKPOINT_MODE))
        return ret
