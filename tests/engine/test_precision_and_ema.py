"""Training switches: mixed precision (SOLVER.AMP), channels-last memory format (MODEL.CHANNELS_LAST)
and the exponential moving average of the weights (MODEL.EMA)."""
import math

import pytest
import torch

from segdet.checkpoint import load_checkpoint_file
from segdet.engine.ema import ModelEMA
from segdet.engine.train_loop import HookBase
from segdet.modeling.load import load_model
from tests.engine.conftest import read_metrics
from tests.engine.test_trainer import train


class ConvDtypes(HookBase):
    """Records the dtype the backbone's first convolution computes in, at every step."""

    def __init__(self):
        self.dtypes = []

    def before_train(self):
        conv = self.trainer.model.backbone.body.conv1
        conv.register_forward_hook(lambda module, args, out: self.dtypes.append(out.dtype))


def test_amp_on_a_cpu_runs_the_convolutions_in_bfloat16_and_keeps_float32_checkpoints(tiny_cfg_factory):
    cfg, _ = tiny_cfg_factory(mask_on=True, opts=["SOLVER.AMP.ENABLED", "True", "SOLVER.MAX_ITER", "2",
                                                  "MODEL.CHANNELS_LAST", "True"])
    probe = ConvDtypes()
    trainer, _ = train(cfg, extra_hooks=[probe])
    assert probe.dtypes[:2] == [torch.bfloat16, torch.bfloat16]  # the two training steps
    assert trainer.loop.grad_scaler is None  # bfloat16 needs no loss scaling
    state = load_checkpoint_file(f"{cfg.OUTPUT_DIR}/model_final.pth")["model"]
    floats = [v for v in state.values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float32 for v in floats)
    assert trainer.unwrapped_model.backbone.body.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    losses = [r["total_loss"] for r in read_metrics(cfg.OUTPUT_DIR) if "total_loss" in r]
    assert losses and all(math.isfinite(v) for v in losses)


def test_channels_last_gives_the_same_outputs(tiny_cfg_factory):
    cfg, _ = tiny_cfg_factory(mask_on=False, opts=["SOLVER.MAX_ITER", "1"])
    trainer, _ = train(cfg)
    path = f"{cfg.OUTPUT_DIR}/model_final.pth"
    plain = load_model(path, opts=["MODEL.DEVICE", "cpu"]).model
    nhwc = load_model(path, opts=["MODEL.DEVICE", "cpu", "MODEL.CHANNELS_LAST", "True"]).model
    assert nhwc.backbone.body.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    image = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        a, b = plain([{"image": image}])[0], nhwc([{"image": image}])[0]
    assert torch.allclose(a["sem_seg"], b["sem_seg"], atol=1e-5)
    assert (a["segmentation_image"] == b["segmentation_image"]).float().mean() > 0.999


def test_ema_weights_equal_a_hand_computation_after_three_steps():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    decay = 0.8
    ema = ModelEMA(model, decay)
    seen = [model[0].weight.detach().clone()]
    for _ in range(3):
        loss = model(torch.randn(4, 3)).pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.update(model)
        seen.append(model[0].weight.detach().clone())
    w0, w1, w2, w3 = seen
    # e0 = w0; e_k = d_k e_{k-1} + (1 - d_k) w_k, d_k = min(0.8, k / (9 + k)): 1/10, 2/11, 3/12.
    d1, d2, d3 = 0.1, 2 / 11, 0.25
    expected = w0
    for d, w in ((d1, w1), (d2, w2), (d3, w3)):
        expected = d * expected + (1 - d) * w
    assert torch.allclose(ema.weights["0.weight"], expected, atol=1e-6)
    assert ema.weights["1.num_batches_tracked"].item() == 3  # integer buffers are copied
    with ema.applied(model):
        assert torch.allclose(model[0].weight, expected, atol=1e-6)
    assert torch.equal(model[0].weight, w3)  # the model's own weights come back


def test_ema_decay_ramps_up_to_the_configured_decay():
    ema = ModelEMA(torch.nn.Linear(1, 1), 0.999)
    assert ema.current_decay() == 0.1
    ema.updates = 90
    assert ema.current_decay() == 0.91
    ema.updates = 100000
    assert ema.current_decay() == 0.999


def test_training_with_ema_saves_and_serves_the_averaged_weights(tiny_cfg_factory):
    cfg, _ = tiny_cfg_factory(mask_on=False, opts=["MODEL.EMA.ENABLED", "True", "MODEL.EMA.DECAY", "0.5",
                                                   "SOLVER.MAX_ITER", "3"])
    trainer, _ = train(cfg)
    data = load_checkpoint_file(f"{cfg.OUTPUT_DIR}/model_final.pth")
    assert data["ema"]["updates"] == 3
    key = "sem_seg_head.predictor.weight"
    assert not torch.equal(data["ema"]["weights"][key], data["model"][key])  # they differ after 3 steps
    served = load_model(f"{cfg.OUTPUT_DIR}/model_final.pth", opts=["MODEL.DEVICE", "cpu"]).model
    assert torch.equal(served.state_dict()[key], data["ema"]["weights"][key])
    # Training itself goes on from the model's own weights.
    assert torch.equal(trainer.unwrapped_model.state_dict()[key], data["model"][key])


def test_ema_decay_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="EMA decay 1.0"):
        ModelEMA(torch.nn.Linear(1, 1), 1.0)
