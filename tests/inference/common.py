"""Tiny random models saved as segdet checkpoints, for the inference and predict-tool tests."""
import numpy as np
import torch

from segdet.checkpoint import SegdetCheckpointer
from segdet.modeling import build_model
from tests.modeling.test_meta_arch import METADATA, tiny_cfg


def save_tiny_checkpoint(folder, mask_on=False, seed=0, correction=0.0, class_weights=None):
    """Save a random tiny model with its metadata and config; returns (path, cfg, model in eval mode).

    `correction` and `class_weights`: MODEL.SEM_SEG_HEAD.CLASS_WEIGHT_CORRECTION and the
    training class weights the model records (default all 1)."""
    torch.manual_seed(seed)
    cfg = tiny_cfg(mask_on=mask_on)
    cfg.MODEL.SEM_SEG_HEAD.CLASS_WEIGHT_CORRECTION = correction
    model = build_model(cfg, METADATA)
    if class_weights is not None:
        model.set_training_class_weights(class_weights)
    with torch.no_grad():
        # A random model predicts nearly one class everywhere; spread the classes so that
        # encodings and merges are tested on several ids.
        torch.nn.init.normal_(model.sem_seg_head.predictor.weight, std=1.0)
    SegdetCheckpointer(model, str(folder), extra_data={"metadata": METADATA.to_dict(), "config": cfg.dump()}
                       ).save("model_final")
    return str(folder / "model_final.pth"), cfg, model.eval()


def random_image(h=48, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def whole_image_output(model, image):
    """The model's output dict of one HxWx3 image, whole (no test-time resize), without gradients."""
    h, w = image.shape[:2]
    with torch.no_grad():
        return model([{"image": torch.from_numpy(image.transpose(2, 0, 1).copy()), "height": h, "width": w}])[0]
