#!/usr/bin/env python
"""Train a segdet model, or evaluate one (--eval-only), as detectron2's tools/train_net.py.

  python tools/train_net.py --config-file configs/demo/quickstart.yaml
  python tools/train_net.py --config-file CFG --resume
  python tools/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS output/model_final.pth

Exit status: 0 done, 1 a failed run (a non-finite loss, an error with its traceback), 2 bad input
or config (one line naming the file or key and the problem).
"""
import logging

from segdet.checkpoint import last_checkpoint
from segdet.config import load_config
from segdet.data.formats import register_from_config
from segdet.engine.defaults import default_argument_parser, default_setup
from segdet.engine.launch import launch
from segdet.engine.trainer import Trainer, evaluate, output_paths_summary
from segdet.inference.onnx_engine import use_engine
from segdet.modeling.load import load_model
from segdet.utils import comm
from segdet.utils.cli import run_cli

logger = logging.getLogger("segdet")


def setup(args):
    cfg = load_config(args.config_file, args.opts)
    register_from_config(cfg)
    return default_setup(cfg, args)


def main(args):
    cfg = setup(args)
    if args.eval_only:
        # --resume: the run's newest checkpoint, as training would continue from it.
        weights = (last_checkpoint(cfg.OUTPUT_DIR) if args.resume else None) or cfg.MODEL.WEIGHTS
        # TEST.ENGINE: the same logits step as tools/predict.py runs (PyTorch or ONNX Runtime).
        return evaluate(cfg, use_engine(load_model(weights, cfg).model, cfg.TEST.ENGINE))

    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    results = trainer.train()
    if comm.is_main_process():
        logger.info("Outputs:\n%s", "\n".join(output_paths_summary(cfg.OUTPUT_DIR)))
    return results


def run(args):
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))


if __name__ == "__main__":
    parser = default_argument_parser()
    parser.epilog += "\n" + __doc__[__doc__.index("Exit status"):]
    arguments = parser.parse_args()
    run_cli(lambda: run(arguments))
