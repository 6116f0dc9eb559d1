#!/usr/bin/env python
r"""Write registered datasets in segdet's plain layout: images, gray label PNGs (pixel = class
id), a COCO instances json, a classes file and a split file (segdet/converters/plain_layout.py).

    python tools/convert_dataset.py --dataset cityscapes_fine_train cityscapes_fine_val \
        --splits train val --output data/cityscapes_plain
    python tools/convert_dataset.py --config-file configs/parts.yaml --dataset parts_labelme \
        --output data/parts_plain

Each dataset becomes one split of the split file (named by --splits, default the dataset names).
Read the result back with FORMAT image_folder (or coco_semantic, for the instances).

Exit status: 0 done, 2 bad input (one line naming the file and the problem).
"""
from __future__ import annotations

import argparse
import sys

from segdet.data import DatasetCatalog
from segdet.data.resolve import dataset_metadata
from segdet.errors import DataError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", nargs="+", required=True, help="registered dataset name(s), one per split")
    parser.add_argument("--config-file", default=None, help="config whose DATASETS.CUSTOM declares the datasets")
    parser.add_argument("--splits", nargs="+", default=None, help="split name of each dataset (default: its name)")
    parser.add_argument("--output", required=True, help="a new (or empty) folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from segdet.converters.plain_layout import write_plain_layout
    from segdet.utils.logger import setup_logger

    args = parse_args(argv)
    setup_logger()
    splits = args.splits or args.dataset
    if len(splits) != len(args.dataset):
        raise DataError(f"--splits gives {len(splits)} names for {len(args.dataset)} datasets")
    metadata = dataset_metadata(args.dataset[0], args.config_file)
    for name in args.dataset[1:]:
        other = dataset_metadata(name)
        if other.class_names != metadata.class_names:
            raise DataError(f"datasets '{args.dataset[0]}' and '{name}' have different classes: "
                            f"{metadata.class_names} vs {other.class_names}")
    summary = write_plain_layout([(split, DatasetCatalog.get(name)) for split, name in zip(splits, args.dataset)],
                                 metadata, args.output)
    per_split = ", ".join(f"{name} {count}" for name, count in summary["splits"].items())
    print(f"wrote {summary['images']} images ({per_split}) and {summary['instances']} instances to {args.output}")
    return 0


if __name__ == "__main__":
    from segdet.utils.cli import run_cli

    sys.exit(run_cli(main))
