#!/usr/bin/env python
"""Check datasets before training: every image and label file decoded to the end and validated,
and every bad sample reported at once (what tools/train_net.py does before it starts).

  python tools/check_dataset.py --config-file configs/camvid/semantic_R_18.yaml
  python tools/check_dataset.py --config-file CFG --dataset camvid_train camvid_val --report check.json

The datasets (default DATASETS.TRAIN and DATASETS.TEST) are checked as the config trains on
them: their classes with the config's overrides, their annotations when MODEL.MASK_ON. A
table lists the bad samples and the problem of each; the JSON report goes to --report
(default OUTPUT_DIR/dataset_check.json). Exit status 0: all good; 2: bad samples, or a bad
config. What was learnt of each file is cached in $SEGDET_CACHE (default ~/.cache/segdet),
so a second check reads only new and changed files.
"""
from __future__ import annotations

import argparse
import os
import sys

from segdet.utils.cli import positive_int


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE", help="the training config")
    parser.add_argument("--dataset", nargs="+", default=None, metavar="NAME",
                        help="datasets to check (default DATASETS.TRAIN and DATASETS.TEST)")
    parser.add_argument("--report", default=None, metavar="FILE",
                        help="JSON report (default OUTPUT_DIR/dataset_check.json)")
    parser.add_argument("--processes", type=positive_int, default=None,
                        help="processes reading the files (default: the usable cores)")
    parser.add_argument("--no-cache", action="store_true", help="read every file, ignoring the cache")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="config overrides as KEY VALUE pairs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from segdet.config import load_config
    from segdet.data.catalog import DatasetCatalog
    from segdet.data.check import REPORT_FILE, check_datasets
    from segdet.data.formats import register_from_config
    from segdet.errors import ConfigError, DataError
    from segdet.utils.files import write_json
    from segdet.utils.logger import setup_logger

    setup_logger()
    cfg = load_config(args.config_file, args.opts)
    register_from_config(cfg)
    names = args.dataset or list(dict.fromkeys(cfg.DATASETS.TRAIN + cfg.DATASETS.TEST))
    if not names:
        raise ConfigError(f"{args.config_file}: no dataset to check; give --dataset NAME or set DATASETS.TRAIN")
    report = check_datasets(cfg, {name: DatasetCatalog.get(name) for name in names},
                            processes=args.processes, use_cache=not args.no_cache)
    path = write_json(report.to_dict(), args.report or os.path.join(cfg.OUTPUT_DIR, REPORT_FILE))
    print(report.summary())
    if not report.ok:
        print(report.table())
        raise DataError(report.error_message(path))
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    from segdet.utils.cli import run_cli

    sys.exit(run_cli(main))
