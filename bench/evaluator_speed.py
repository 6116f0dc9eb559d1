#!/usr/bin/env python
"""Evaluator throughput: SemSegEvaluator.add against a bare np.bincount confusion matrix.

Both work on the same arrays: ground truth as a LabelCodec gives it (HxW uint8 class ids)
and the prediction as a model gives it (segmentation_image, HxW int64), with one ignore
class whose ground-truth pixels both leave out. The bare computation is the smallest correct
one, in two forms: (a) drop the ignore pixels (a boolean mask), then one bincount of
gt * C + pred; (b) one bincount of all pixels, then the ignore rows cleared (the same matrix,
without the masked copies). The ratio is taken against the faster of the two. The evaluator
also checks that every value is a class id and that no ignore class is predicted.

    .venv/bin/python bench/evaluator_speed.py [--quick] [--output results.json]

Target: the evaluator at least 0.8x the bare computation's megapixels per second.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

TARGET_RATIO = 0.8


def parse_args():
    p = common.base_parser(__doc__.splitlines()[1])
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="label map size (default 1024 2048, Cityscapes; --quick 256 512)")
    p.add_argument("--images", type=int, default=None, help="images per round (default 8; --quick 2)")
    p.add_argument("--num-classes", type=int, default=20, help="classes, the ignore class included (default 20)")
    return p.parse_args()


def label_maps(n: int, h: int, w: int, num_classes: int, ignore_id: int, seed: int = 0):
    """Ground truth with blocky regions and about 10% ignore pixels; a prediction that agrees
    on about 70% of the pixels and never predicts the ignore class."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pairs = []
    classes = np.array([c for c in range(num_classes) if c != ignore_id])
    for _ in range(n):
        # Regions of 16x16 pixels: realistic runs of equal values (bincount speed depends on them).
        coarse = rng.choice(classes, size=((h + 15) // 16, (w + 15) // 16))
        gt = np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)[:h, :w].astype(np.uint8)
        gt[rng.random((h, w)) < 0.1] = ignore_id
        pred = np.where(rng.random((h, w)) < 0.7, gt, rng.choice(classes, size=(h, w))).astype(np.int64)
        pred[pred == ignore_id] = classes[0]
        pairs.append((np.ascontiguousarray(gt), np.ascontiguousarray(pred)))
    return pairs


def bare_confusion_masked(gt, pred, num_classes: int, ignore_id: int):
    """Reference (a): ignore pixels dropped first, one bincount."""
    import numpy as np

    keep = gt != ignore_id
    index = gt[keep].astype(np.int64) * num_classes + pred[keep]
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def bare_confusion_cleared(gt, pred, num_classes: int, ignore_id: int):
    """Reference (b): one bincount over all pixels, then the ignore row cleared."""
    import numpy as np

    index = gt.astype(np.int64) * num_classes + pred
    conf = np.bincount(index.ravel(), minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    conf[ignore_id] = 0
    return conf


def main() -> None:
    args = parse_args()
    import numpy as np

    from segdet.evaluation.sem_seg_evaluation import SemSegEvaluator
    from segdet.structures.metadata import Metadata

    threads = common.setup_threads(args.threads)
    quick = args.quick
    h, w = args.size or ((256, 512) if quick else (1024, 2048))
    n = args.images or (2 if quick else 8)
    rounds = args.rounds or (3 if quick else 15)
    warmup = args.warmup if args.warmup is not None else 1
    C = args.num_classes
    ignore_id = C - 1
    info = common.machine_info()
    common.print_machine(info)

    pairs = label_maps(n, h, w, C, ignore_id)
    evaluator = SemSegEvaluator(Metadata([f"class{i}" for i in range(C)], ignore_class_ids=[ignore_id]))

    def run_evaluator():
        evaluator.reset()
        for gt, pred in pairs:
            evaluator.add(gt, pred)
        return evaluator.confusion

    def bare(fn):
        def call():
            conf = np.zeros((C, C), dtype=np.int64)
            for gt, pred in pairs:
                conf += fn(gt, pred, C, ignore_id)
            return conf
        return call

    candidates = {"SemSegEvaluator.add": run_evaluator,
                  "bare bincount, ignore pixels masked out": bare(bare_confusion_masked),
                  "bare bincount, ignore row cleared": bare(bare_confusion_cleared)}
    # Same answer first: a fast wrong evaluator is no result.
    answers = [c() for c in candidates.values()]
    same = all(bool(np.array_equal(answers[0], a)) for a in answers[1:])
    print(f"{n} images of {h}x{w}, {C} classes (id {ignore_id} = ignore); confusion matrices equal: {same}",
          flush=True)
    if not same:
        raise SystemExit("the evaluator's confusion matrix differs from the bare bincount one")

    times = common.alternate(candidates, rounds, warmup)
    stats = {k: common.summary(v) for k, v in times.items()}
    mpix = n * h * w / 1e6
    rate = {k: mpix / s["median"] for k, s in stats.items()}
    best_bare = max((k for k in rate if k.startswith("bare")), key=rate.get)
    r = common.ratio(rate["SemSegEvaluator.add"], rate[best_bare])
    common.print_table(
        [[k, s["median"], rate[k], common.ratio(rate[k], rate[best_bare])] for k, s in stats.items()],
        ["method", f"median s ({n} images)", "Mpix/s", "x fastest bare"],
        title=f"Confusion matrix of {n} images of {h}x{w} ({mpix:.1f} Mpix), {rounds} alternating rounds")
    ok = r >= TARGET_RATIO
    print(f"evaluator / fastest bare ({best_bare}) = {r:.3f} (target >= {TARGET_RATIO}): {common.verdict(ok)}",
          flush=True)

    settings = {"size": [h, w], "images": n, "num_classes": C, "ignore_class_id": ignore_id,
                "gt_dtype": "uint8", "pred_dtype": "int64", "rounds": rounds, "warmup": warmup,
                "threads": threads, "quick": quick}
    results = {k: dict(stats[k], mpix_per_second=rate[k], samples=times[k]) for k in stats}
    results["fastest_bare"] = best_bare
    results["ratio_evaluator_to_bare"] = r
    common.write_results(args.output or common.default_output("evaluator_speed", quick), "evaluator_speed",
                         info, settings, results, {"ratio_min": TARGET_RATIO, "pass": ok})


if __name__ == "__main__":
    main()
