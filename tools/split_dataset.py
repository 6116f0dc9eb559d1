#!/usr/bin/env python
r"""Split a dataset's images into train/val/test and write a split file.

    python tools/split_dataset.py --image-dir data/parts/images --fractions 0.7 0.15 0.15 \
        --seed 0 --output data/parts/split.json
    python tools/split_dataset.py --config-file configs/parts.yaml --dataset parts_all \
        --fractions 0.8 0.2 --names train val --output split.json

Loaders take the file with `split_file=...`, `split="train"` (DATASETS.CUSTOM: SPLIT_FILE, SPLIT).
Exit status: 0 done, 2 bad input (one line naming the file and the problem).
"""
from __future__ import annotations

import argparse
import sys

from segdet.data import DatasetCatalog
from segdet.data.formats import register_from_config
from segdet.data.formats.image_folder import list_image_files
from segdet.data.split import split_image_ids, write_split_file
from segdet.utils.cli import run_cli

DEFAULT_NAMES = {1: ["train"], 2: ["train", "val"], 3: ["train", "val", "test"]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="a registered dataset name (see --config-file)")
    source.add_argument("--image-dir", help="a folder of images; the image ids are the file stems")
    parser.add_argument("--config-file", help="config whose DATASETS.CUSTOM declares --dataset")
    parser.add_argument("--fractions", type=float, nargs="+", required=True, help="one fraction per split, sum 1")
    parser.add_argument("--names", nargs="+", help="split names (default: train val test)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True, help="the split file to write (JSON)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = args.names or DEFAULT_NAMES.get(len(args.fractions))
    if not names or len(names) != len(args.fractions) or len(set(names)) != len(names):
        print(f"error: {len(args.fractions)} fractions need as many distinct --names", file=sys.stderr)
        return 2
    if args.dataset:
        if args.config_file:
            from segdet.config import load_config

            register_from_config(load_config(args.config_file))
        image_ids = [str(d["image_id"]) for d in DatasetCatalog.get(args.dataset)]
    else:
        image_ids = sorted(list_image_files(args.image_dir, "image"))
    splits = split_image_ids(image_ids, dict(zip(names, args.fractions)), seed=args.seed)
    write_split_file(args.output, splits, seed=args.seed)
    for name, ids in splits.items():
        print(f"{name}: {len(ids)} images")
    print(f"wrote {args.output} ({len(image_ids)} images, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
