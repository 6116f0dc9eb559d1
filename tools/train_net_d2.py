#!/usr/bin/env python
"""Train segdet's parts inside detectron2 (its DefaultTrainer, launcher and flags), or evaluate.

  python tools/train_net_d2.py --config-file configs/detectron2/demo.yaml
  python tools/train_net_d2.py --config-file CFG --resume
  python tools/train_net_d2.py --config-file CFG --eval-only MODEL.WEIGHTS output/d2_demo/model_final.pth

Needs detectron2 built from source (README, "Inside detectron2").
"""
import sys

try:
    from segdet.d2 import SegdetTrainer, load_config, register_segdet_datasets
except ImportError as e:  # no detectron2: the one line that says how to install it
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
from segdet.d2.checkpoint import SegdetCheckpointer
from segdet.utils.cli import run_cli

from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger


def setup(args):
    cfg = load_config(args.config_file, args.opts)
    register_segdet_datasets(cfg)
    default_setup(cfg, args)
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="segdet")
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = SegdetTrainer.build_model(cfg)
        SegdetCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        return SegdetTrainer.test(cfg, model)
    trainer = SegdetTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    run_cli(lambda: launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
                           dist_url=args.dist_url, args=(args,)))
