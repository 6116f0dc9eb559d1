"""SegdetTrainer's optimizer: CLIP_TYPE "full_model" clips all gradients together (segdet's
standalone "norm"), detectron2's "norm" each parameter by itself; checked by hand on two tensors."""
import pytest

from tests.d2.conftest import SKIP_REASON

pytest.importorskip("detectron2._C", reason=SKIP_REASON)

import torch  # noqa: E402

from segdet.d2 import SegdetTrainer, get_cfg  # noqa: E402


class Two(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.zeros(2))
        self.b = torch.nn.Parameter(torch.zeros(1))


@pytest.mark.parametrize("optimizer", ["SGD", "ADAMW"])
@pytest.mark.parametrize("clip_type,expected_grads", [
    # Gradients (3, 0) and (4): their joint norm is 5, clipped to 1: each scaled by 1/5.
    ("full_model", ([0.6, 0.0], [0.8])),
    # Each by itself: (3, 0) -> (1, 0); (4) -> (1).
    ("norm", ([1.0, 0.0], [1.0])),
])
def test_gradient_clipping_kinds(optimizer, clip_type, expected_grads):
    cfg = get_cfg()
    cfg.SOLVER.OPTIMIZER = optimizer
    cfg.SOLVER.BASE_LR = 1.0
    cfg.SOLVER.MOMENTUM = 0.0
    cfg.SOLVER.WEIGHT_DECAY = 0.0
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = clip_type
    cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0
    model = Two()
    opt = SegdetTrainer.build_optimizer(cfg, model)
    model.a.grad = torch.tensor([3.0, 0.0])
    model.b.grad = torch.tensor([4.0])
    opt.step()
    assert model.a.grad.tolist() == pytest.approx(expected_grads[0])
    assert model.b.grad.tolist() == pytest.approx(expected_grads[1])
