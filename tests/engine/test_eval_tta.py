"""tools/train_net.py --eval-only with test-time augmentation (TEST.AUG): the evaluation goes through
the model's forward, which averages the variants."""
import json

import torch

from segdet.checkpoint import load_checkpoint_file
from tests.engine.cli import run_tools
from tests.engine.test_trainer import train


def test_eval_only_with_test_time_augmentation_runs_and_changes_the_results(tiny_cfg_factory, tmp_path):
    cfg, config_file = tiny_cfg_factory(mask_on=False)
    train(cfg)
    weights = f"{cfg.OUTPUT_DIR}/model_final.pth"
    # Four iterations predict the background everywhere, with or without variants: spread the
    # classes (as tests/inference/common.py does) so that averaging the variants can change pixels.
    checkpoint = load_checkpoint_file(weights)
    head = checkpoint["model"]["sem_seg_head.predictor.weight"]
    head.copy_(torch.randn(head.shape, generator=torch.Generator().manual_seed(0)))
    torch.save(checkpoint, weights)
    variants = {"plain": [], "tta": ["TEST.AUG.ENABLED", "True", "TEST.AUG.MIN_SIZES", "(48, 64)"]}
    runs = run_tools([["--config-file", config_file, "--eval-only", "MODEL.WEIGHTS", weights,
                       "OUTPUT_DIR", str(tmp_path / name), *opts] for name, opts in variants.items()], timeout=300)
    for run in runs:
        assert run.returncode == 0, run.stderr[-3000:]
    results = {name: json.load(open(tmp_path / name / "inference" / "tiny_val" / "results.json"))["sem_seg"]
               for name in variants}
    plain, tta = results["plain"]["pixel_confusion_matrix"], results["tta"]["pixel_confusion_matrix"]
    assert sum(map(sum, plain)) == sum(map(sum, tta)) > 0  # the same pixels counted, classified otherwise
    assert plain != tta
