#!/usr/bin/env python
"""Convert COCO panoptic annotations into segdet semantic PNGs and a classes file.

    python datasets/prepare_coco_panoptic.py \\
        --panoptic-json datasets/coco/annotations/panoptic_train2017.json \\
        --panoptic-root datasets/coco/annotations/panoptic_train2017 \\
        --output-root datasets/coco/panoptic_semseg_train2017 \\
        --classes-out datasets/coco/classes.json [--workers 8] \\
        [--instances-json datasets/coco/annotations/instances_train2017.json]

Writes one gray PNG per image (`<image stem>.png`, pixel = class id) and `classes.json`:
the panoptic categories in json order are classes 0..K-1 (COCO 2017: 80 things, then
53 stuff), and class K `unlabeled` is an ignore class (segment 0 and segments the json
does not list). Run it for train2017 and val2017 with the same --classes-out; the
second run checks that the classes agree. Images already converted are skipped, so
an interrupted run can be started again. Exit status: 0 = all converted, 1 = some
images failed (each named in the log), 2 = the input cannot be used at all.
See datasets/README.md, "COCO panoptic".
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from segdet.converters.coco_panoptic import check_instances_categories, convert_coco_panoptic, describe_failure
from segdet.utils.cli import positive_int, run_cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panoptic-json", required=True, help="e.g. annotations/panoptic_train2017.json")
    parser.add_argument("--panoptic-root", required=True, help="its PNG folder, e.g. annotations/panoptic_train2017")
    parser.add_argument("--output-root", required=True, help="folder for the gray class-id PNGs")
    parser.add_argument("--classes-out", required=True, help="classes file to write (checked if it exists)")
    parser.add_argument("--workers", type=positive_int, default=min(8, os.cpu_count() or 1),
                        help="converting processes (default: %(default)s)")
    parser.add_argument("--instances-json",
                        help="optional: a COCO instances json whose category names are checked against the "
                             "panoptic thing classes (coco_semantic matches them by name)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    summary = convert_coco_panoptic(args.panoptic_json, args.panoptic_root, args.output_root,
                                    args.classes_out, workers=args.workers)
    status = 0
    if args.instances_json:
        with open(args.classes_out) as f:
            classes = json.load(f)["classes"]
        problems = check_instances_categories(args.instances_json, classes)
        for problem in problems:
            logging.error("%s: %s", args.instances_json, problem)
        if problems:
            status = 1
        else:
            logging.info("%s: its %d category names are the panoptic thing classes", args.instances_json,
                         summary.num_thing_classes)
    print(json.dumps(summary.as_dict(), indent=1))
    if summary.failed:
        print(f"{len(summary.failed)} of {summary.total} images failed:", file=sys.stderr)
        for path, problem in summary.failed[:20]:
            print(f"  {describe_failure(path, problem)}", file=sys.stderr)
        if len(summary.failed) > 20:
            print(f"  ... and {len(summary.failed) - 20} more (all are in the log above)", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(run_cli(main))
