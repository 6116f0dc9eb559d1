"""TEST.AMP (bfloat16 autocast of the network in inference) and MODEL.CHANNELS_LAST at inference:
the same switch for whole-image, tiled and evaluated inference, outputs in float32 and close to
plain float32's."""
import torch

from segdet.inference.predictor import Predictor
from tests.inference.common import random_image, save_tiny_checkpoint

AMP = ["MODEL.DEVICE", "cpu", "TEST.AMP.ENABLED", "True"]


def conv_dtypes(predictor):
    """The dtypes the backbone's first convolution computes in, recorded at every call."""
    dtypes = []
    predictor.model.backbone.body.conv1.register_forward_hook(lambda m, args, out: dtypes.append(out.dtype))
    return dtypes


def test_amp_runs_the_network_in_bfloat16_and_gives_float32_scores_close_to_float32(tmp_path):
    path, _, _ = save_tiny_checkpoint(tmp_path)
    plain, amp = Predictor.from_checkpoint(path, ["MODEL.DEVICE", "cpu"]), Predictor.from_checkpoint(path, AMP)
    dtypes = conv_dtypes(amp)
    image = random_image(64, 96)
    a, b = plain(image), amp(image)
    assert dtypes == [torch.bfloat16]
    assert b["sem_seg"].dtype == torch.float32 and b["segmentation_confidence"].dtype == torch.float32
    # bfloat16 keeps 8 bits of mantissa: probabilities close on average, not equal.
    difference = (a["sem_seg"] - b["sem_seg"]).abs()
    assert 0 < difference.mean().item() < 0.005 and difference.max().item() < 0.15
    # The tolerance for bf16: under 0.5 % of the pixels change class.
    assert (a["segmentation_image"] != b["segmentation_image"]).float().mean().item() < 0.005


def test_amp_applies_to_tiled_inference_and_to_instances(tmp_path):
    path, _, _ = save_tiny_checkpoint(tmp_path, mask_on=True)
    amp = Predictor.from_checkpoint(path, AMP)
    dtypes = conv_dtypes(amp)
    out = amp(random_image(96, 128), tile_size=64, overlap=0.5)
    # Tiles start at 0, 32, 64 across and 0, 32 down: two rows of 3 tiles, one forward pass per row.
    assert dtypes == [torch.bfloat16, torch.bfloat16]
    instances = out["instances"]
    assert instances.scores.dtype == torch.float32 and instances.pred_boxes.dtype == torch.float32
    whole = amp(random_image(48, 64))
    assert whole["instances"].scores.dtype == torch.float32 and whole["instances"].pred_masks.dtype == torch.bool


def test_amp_is_off_in_training_mode_so_that_solver_amp_decides(tmp_path):
    path, _, _ = save_tiny_checkpoint(tmp_path)
    model = Predictor.from_checkpoint(path, AMP).model.train()
    dtypes = []
    model.backbone.body.conv1.register_forward_hook(lambda m, args, out: dtypes.append(out.dtype))
    model.semantic_logits(torch.zeros(2, 3, 64, 64))
    assert dtypes == [torch.float32]


def test_channels_last_at_inference_gives_the_outputs_of_the_plain_model(tmp_path):
    path, _, _ = save_tiny_checkpoint(tmp_path)
    plain = Predictor.from_checkpoint(path, ["MODEL.DEVICE", "cpu"])
    nhwc = Predictor.from_checkpoint(path, ["MODEL.DEVICE", "cpu", "MODEL.CHANNELS_LAST", "True"])
    assert nhwc.model.backbone.body.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    image = random_image(64, 96)
    for tile in (None, 48):
        a, b = plain(image, tile_size=tile), nhwc(image, tile_size=tile)
        assert (a["sem_seg"] - b["sem_seg"]).abs().max().item() < 1e-4  # another summation order only
        assert torch.equal(a["segmentation_image"], b["segmentation_image"])
