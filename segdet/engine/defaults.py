"""What every tool does first: detectron2's command-line flags, and the run's setup
(output folder, logging, config.yaml, seeds)."""
from __future__ import annotations

import argparse
import os
import random
import sys

import numpy as np
import torch
import yaml

from segdet.utils.files import atomic_write_text, remove_stale_temp_files
from segdet.utils import comm
from segdet.utils.logger import setup_logger


def default_argument_parser(description: str = "segdet training") -> argparse.ArgumentParser:
    """detectron2's flags: --config-file, --resume, --eval-only, --num-gpus, --num-machines,
    --machine-rank, --dist-url, then KEY VALUE overrides."""
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n"
               "  tools/train_net.py --config-file configs/demo/quickstart.yaml\n"
               "  tools/train_net.py --config-file cfg.yaml --resume\n"
               "  tools/train_net.py --config-file cfg.yaml --eval-only MODEL.WEIGHTS output/model_final.pth\n"
               "  tools/train_net.py --config-file cfg.yaml SOLVER.BASE_LR 0.01 SOLVER.MAX_ITER 500\n",
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to a config file")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in OUTPUT_DIR, if there is one")
    parser.add_argument("--eval-only", action="store_true", help="only evaluate MODEL.WEIGHTS on DATASETS.TEST")
    parser.add_argument("--num-gpus", type=int, default=1,
                        help="processes per machine (one per GPU; CPU processes when there is no GPU)")
    parser.add_argument("--num-machines", type=int, default=1)
    parser.add_argument("--machine-rank", type=int, default=0, help="the rank of this machine")
    parser.add_argument("--dist-url", default="auto", help="tcp://HOST:PORT of machine 0 for multi-machine runs")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="config overrides as KEY VALUE pairs, e.g. SOLVER.BASE_LR 0.01")
    return parser


def _previous_seed(output_dir: str) -> int | None:
    path = os.path.join(output_dir, "config.yaml")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        seed = (yaml.safe_load(f) or {}).get("SEED")
    return seed if isinstance(seed, int) and seed >= 0 else None


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_setup(cfg, args: argparse.Namespace | None = None):
    """Create OUTPUT_DIR, set up logging, fix the seed (a random one is chosen and recorded when
    SEED < 0; `--resume` reuses the recorded one), write OUTPUT_DIR/config.yaml, apply
    DETERMINISTIC. Returns the config with the seed filled in (frozen)."""
    output_dir = cfg.OUTPUT_DIR
    rank = comm.get_rank()
    if comm.is_main_process():
        os.makedirs(output_dir, exist_ok=True)
    comm.synchronize()
    logger = setup_logger(output_dir, rank=rank)
    logger.info("Rank %d of %d (pid %d); torch %s; %d threads", rank, comm.get_world_size(), os.getpid(),
                torch.__version__, torch.get_num_threads())
    if comm.is_main_process():
        # What a killed run was writing when it died (its files are intact: writes are atomic).
        for path in remove_stale_temp_files(output_dir):
            logger.info("Removed %s, left by a process that was killed while writing it", path)
    if args is not None:
        logger.info("Command line: %s", " ".join(sys.argv))

    seed = cfg.SEED
    if seed < 0:
        seed = _previous_seed(output_dir) if args is not None and getattr(args, "resume", False) else None
        if seed is None:
            seed = comm.broadcast(int.from_bytes(os.urandom(3), "little"))
        logger.info("SEED was not set; using %d (recorded in config.yaml)", seed)
    cfg = cfg.clone()
    cfg.defrost()
    cfg.SEED = seed
    cfg.freeze()
    seed_all(seed + rank)

    if cfg.DETERMINISTIC:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK

    if comm.is_main_process():
        path = os.path.join(output_dir, "config.yaml")
        atomic_write_text(cfg.dump(), path)
        logger.info("Full config saved to %s", path)
    return cfg
