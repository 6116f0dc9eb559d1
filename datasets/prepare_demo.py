#!/usr/bin/env python
"""Generate the demo dataset (synthetic fruit on a table) into a folder.

    python datasets/prepare_demo.py --output datasets/demo_fruit
    python datasets/prepare_demo.py --output /data/demo_fruit --num-images 200 --seed 1

Training on `demo_fruit_train` generates the default folder on first use anyway
($SEGDET_DATASETS/demo_fruit, ./datasets/demo_fruit when unset); this script is
for generating it ahead of time, elsewhere, or larger.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from segdet.data.demo import DEFAULT_NUM_IMAGES, default_demo_root, generate_demo_dataset
from segdet.utils.cli import positive_int


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=default_demo_root(), help="folder to write (default: %(default)s)")
    parser.add_argument("--num-images", type=positive_int, default=DEFAULT_NUM_IMAGES, help="images in all splits together")
    parser.add_argument("--seed", type=int, default=0, help="same seed -> the same files")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    summary = generate_demo_dataset(args.output, num_images=args.num_images, seed=args.seed)
    print(json.dumps(summary, indent=1))
    print(f"Demo dataset written to {summary['output_dir']} (see README.txt there).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
