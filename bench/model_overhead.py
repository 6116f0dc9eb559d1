#!/usr/bin/env python
"""Model overhead: segdet's PanopticFPN forward pass against torchvision's Mask R-CNN.

Both models have the same ResNet depth, FPN width, RPN/RoI settings, input size and thread
count, run in one process in alternating rounds after a warm-up, under torch.inference_mode.
torchvision's model is copied the very same weights as segdet's (the parameter names match),
so both find the same boxes; the score threshold is 0 and the per-image cap 100, so both
return exactly 100 detections per image (checked, printed): detection count (mask pasting)
dominates the CPU time of the postprocessing. torchvision's transform is told the input size
as min/max size, so it does not resize.

segdet does more than torchvision: the semantic head, the full-resolution softmax and
segmentation_image, and the panoptic fusion. Rows show these parts separately: segdet with
`combine_on` False, the semantic head alone, the semantic postprocessing alone, and the
fusion alone (with the default confidence threshold, and with 0 so that every detection is
placed: random weights score all detections below 0.5).

Also: the semantic-only model (SemanticSegmentor, R-18 and R-50) in images per second.

    .venv/bin/python bench/model_overhead.py [--quick] [--output results.json]

Target: segdet (full) at most 1.15x torchvision's time.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402  (sets up the import path of the repository)

TARGET_RATIO = 1.15


def parse_args():
    p = common.base_parser(__doc__.splitlines()[1])
    p.add_argument("--depth", type=int, default=None, help="ResNet depth of both models (default 50; --quick 18)")
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="input size (default 512 683, the size detectron2's Panoptic FPN was timed at; --quick 256 256)")
    p.add_argument("--num-classes", type=int, default=81,
                   help="semantic classes (MODEL.SEM_SEG_HEAD.NUM_CLASSES), class 0 = background stuff")
    p.add_argument("--num-things", type=int, default=80, help="thing classes (ids 1..K)")
    p.add_argument("--detections", type=int, default=None,
                   help="per-image cap (TEST.DETECTIONS_PER_IMAGE; default 100, --quick 20)")
    p.add_argument("--proposals", type=int, default=None,
                   help="RPN proposals kept after NMS, both models (default 1000 as both defaults; --quick 100)")
    p.add_argument("--semantic-size", type=int, default=None,
                   help="input side of the semantic-only images/s rows (default 512; --quick 128)")
    p.add_argument("--semantic-depths", type=int, nargs="+", default=None,
                   help="depths of the semantic-only rows (default 18 50; --quick 18)")
    return p.parse_args()


def input_image(h: int, w: int):
    """A real photo (a demo test image, resized) when the demo dataset is there, else noise."""
    import cv2
    import numpy as np

    folder = os.path.join(common.REPO_ROOT, "datasets", "demo_fruit", "images", "test")
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    if names:
        from segdet.utils.image_io import read_image

        image = cv2.resize(read_image(os.path.join(folder, names[0])), (w, h), interpolation=cv2.INTER_LINEAR)
        return image, f"{os.path.join('datasets/demo_fruit/images/test', names[0])} resized to {h}x{w}"
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8), f"uniform noise {h}x{w}"


def segdet_cfg(depth: int, num_classes: int, num_things: int, detections: int, proposals: int = 1000,
               mask_on: bool = True):
    from segdet.config import get_cfg

    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.MASK_ON = mask_on
    cfg.MODEL.META_ARCHITECTURE = "PanopticFPN" if mask_on else "SemanticSegmentor"
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES = num_classes
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = num_things
    # Random weights give arbitrary scores: threshold 0 makes the cap decide the detection count.
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    cfg.TEST.DETECTIONS_PER_IMAGE = detections
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = proposals
    return cfg


def metadata(num_classes: int, num_things: int):
    from segdet.structures.metadata import Metadata

    return Metadata([f"class{i}" for i in range(num_classes)], thing_class_ids=list(range(1, num_things + 1)),
                    name="bench")


def torchvision_maskrcnn(depth: int, num_things: int, h: int, w: int, detections: int, proposals: int = 1000):
    """torchvision's Mask R-CNN with the same backbone (plain BatchNorm, as segdet's "BN"), no resize."""
    from torch import nn
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    backbone = resnet_fpn_backbone(backbone_name=f"resnet{depth}", weights=None, norm_layer=nn.BatchNorm2d,
                                   trainable_layers=5)
    return MaskRCNN(backbone, num_classes=num_things + 1, min_size=min(h, w), max_size=max(h, w),
                    box_score_thresh=0.0, box_detections_per_img=detections,
                    rpn_post_nms_top_n_test=proposals)


def copy_weights(segdet_model, tv_model) -> str:
    """Give torchvision's model segdet's weights; returns what happened (printed)."""
    parts = [("backbone", "backbone"), ("rpn", "rpn"), ("roi_heads", "roi_heads")]
    problems = []
    for src, dst in parts:
        result = getattr(tv_model, dst).load_state_dict(getattr(segdet_model, src).state_dict(), strict=False)
        if result.missing_keys or result.unexpected_keys:
            problems.append(f"{dst}: missing {result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]}")
    return "identical weights" if not problems else "partly copied weights: " + "; ".join(problems)


def main() -> None:
    args = parse_args()
    import torch

    threads = common.setup_threads(args.threads)
    quick = args.quick
    depth = args.depth or (18 if quick else 50)
    h, w = args.size or ((256, 256) if quick else (512, 683))
    rounds = args.rounds or (2 if quick else 10)
    warmup = args.warmup if args.warmup is not None else (1 if quick else 2)
    sem_size = args.semantic_size or (128 if quick else 512)
    sem_depths = args.semantic_depths or ([18] if quick else [18, 50])
    C, K = args.num_classes, args.num_things
    D = args.detections or (20 if quick else 100)
    P = args.proposals or (100 if quick else 1000)
    if not 1 <= K < C:
        raise SystemExit(f"--num-things {K} must be in 1..{C - 1} (--num-classes {C} includes the background)")

    info = common.machine_info()
    common.print_machine(info)
    from segdet.modeling import build_model

    torch.manual_seed(0)
    md = metadata(C, K)
    sd = build_model(segdet_cfg(depth, C, K, D, P), md).eval()
    tv = torchvision_maskrcnn(depth, K, h, w, D, P).eval()
    weights_note = copy_weights(sd, tv)
    image, image_note = input_image(h, w)
    image_u8 = torch.from_numpy(image.transpose(2, 0, 1).copy())
    sd_input = [{"image": image_u8, "height": h, "width": w}]
    print(f"Input: {image_note}; ResNet-{depth} FPN 256, {C} classes ({K} things), {P} proposals, "
          f"{D} detections/image, {threads} threads; torchvision model: {weights_note}", flush=True)

    # Inputs of the part-timings: segdet's semantic logits and one full result.
    with torch.inference_mode():
        images = sd.preprocess_image(sd_input)
        features = sd.backbone(images.tensors)
        logits = sd.sem_seg_head(features)
        reference = sd(sd_input)[0]
    from segdet.modeling.postprocess import combine_semantic_and_instances

    def run_segdet():
        with torch.inference_mode():
            return sd(sd_input)[0]

    def run_segdet_no_fusion():
        sd.combine_on = False
        try:
            with torch.inference_mode():
                return sd(sd_input)[0]
        finally:
            sd.combine_on = True

    def run_torchvision():
        with torch.inference_mode():
            # torchvision takes float images in [0, 1]; the conversion is part of its call,
            # as segdet's own normalization of the uint8 input is part of segdet's.
            return tv([image_u8.float().div_(255.0)])[0]

    def run_semantic_head():
        with torch.inference_mode():
            return sd.sem_seg_head(features)

    def run_semantic_postprocess():
        with torch.inference_mode():
            return sd.semantic_result(logits[0], images.image_sizes[0], h, w)

    def fusion(score_threshold):
        def call():
            with torch.inference_mode():
                return combine_semantic_and_instances(
                    reference["instances"], reference["segmentation_image"], sd.combine_overlap_threshold,
                    sd.combine_stuff_area_threshold, score_threshold, sd.stuff_class_ids)
        return call

    counts: dict[str, set] = {}

    def check(name, out):
        # Detections per image of every call of the three whole models.
        if name in ("segdet", "segdet, no panoptic fusion"):
            counts.setdefault(name, set()).add(len(out["instances"].scores))
        elif name == "torchvision Mask R-CNN":
            counts.setdefault(name, set()).add(len(out["scores"]))

    candidates = {
        "segdet": run_segdet,
        "torchvision Mask R-CNN": run_torchvision,
        "segdet, no panoptic fusion": run_segdet_no_fusion,
        "segdet semantic head alone (on the FPN features)": run_semantic_head,
        "segdet semantic postprocess alone (resize, softmax, segmentation_image)": run_semantic_postprocess,
        # Random weights score every detection below the default confidence threshold (0.5), so
        # the fusion stops at once; with threshold 0 it places all of them: the worst case.
        "segdet panoptic fusion alone": fusion(sd.combine_instances_score_threshold),
        "segdet panoptic fusion alone, all detections": fusion(0.0),
    }
    times = common.alternate(candidates, rounds, warmup, on_result=check)
    stats = {name: common.summary(t) for name, t in times.items()}
    base = stats["torchvision Mask R-CNN"]["median"]

    # Same boxes? (Same weights: they should agree up to floating-point noise.)
    with torch.inference_mode():
        tv_out = tv([image_u8.float().div_(255.0)])[0]
    sd_boxes, tv_boxes = reference["instances"]["pred_boxes"], tv_out["boxes"]
    same_count = len(sd_boxes) == len(tv_boxes)
    box_diff = float((sd_boxes - tv_boxes).abs().max()) if same_count and len(sd_boxes) else float("nan")
    print("Detections per image: " + "; ".join(f"{n}: {sorted(c)}" for n, c in counts.items())
          + f"; max |box difference| segdet vs torchvision: {box_diff:.3g} px", flush=True)
    equal_detections = all(c == {D} for c in counts.values())
    if not equal_detections:
        print(f"WARNING: not every model returned exactly {D} detections per image; the ratio is not like for like",
              flush=True)

    rows = []
    for name, s in stats.items():
        rows.append([name, s["median"], s["min"], s["max"], common.ratio(s["median"], base)])
    common.print_table(rows, ["model / part", "median s", "min s", "max s", "x torchvision"],
                       title=f"Forward pass of one {h}x{w} image, ResNet-{depth} FPN, {rounds} alternating rounds")
    overhead = common.ratio(stats["segdet"]["median"], base)
    ok = overhead <= TARGET_RATIO if equal_detections else None
    print(f"segdet / torchvision = {overhead:.3f} (target <= {TARGET_RATIO}): {common.verdict(ok)}", flush=True)

    # Semantic-only models, images per second.
    sem_models = {}
    for d in sem_depths:
        torch.manual_seed(0)
        sem_models[f"SemanticSegmentor R-{d}"] = build_model(segdet_cfg(d, C, K, D, P, mask_on=False), md).eval()
    sem_image, _ = input_image(sem_size, sem_size)
    sem_input = [{"image": torch.from_numpy(sem_image.transpose(2, 0, 1).copy()), "height": sem_size,
                  "width": sem_size}]

    def semantic_call(model):
        def call():
            with torch.inference_mode():
                return model(sem_input)
        return call

    sem_times = common.alternate({n: semantic_call(m) for n, m in sem_models.items()}, rounds, warmup)
    sem_stats = {n: common.summary(t) for n, t in sem_times.items()}
    common.print_table(
        [[n, s["median"], 1.0 / s["median"]] for n, s in sem_stats.items()],
        ["model", "median s/image", "images/s"],
        title=f"Semantic-only model, {sem_size}x{sem_size}, FPN 256, {C} classes, batch 1, {threads} threads")

    settings = {"depth": depth, "input_size": [h, w], "input": image_note, "num_classes": C, "num_things": K,
                "detections_per_image": D, "rpn_post_nms_topk_test": P, "score_thresh": 0.0, "fpn_channels": 256,
                "rounds": rounds,
                "warmup": warmup, "threads": threads, "weights": weights_note, "semantic_size": sem_size,
                "semantic_depths": sem_depths, "quick": quick}
    results = {
        "forward": {n: dict(s, ratio_to_torchvision=common.ratio(s["median"], base), samples=times[n])
                    for n, s in stats.items()},
        "detections_per_image": {n: sorted(c) for n, c in counts.items()},
        "equal_detections": equal_detections,
        "max_box_difference_px": box_diff,
        "segdet_over_torchvision": overhead,
        "semantic_only": {n: dict(s, images_per_second=1.0 / s["median"], samples=sem_times[n])
                          for n, s in sem_stats.items()},
    }
    targets = {"segdet_over_torchvision_max": TARGET_RATIO, "pass": ok}
    common.write_results(args.output or common.default_output("model_overhead", quick), "model_overhead",
                         info, settings, results, targets)


if __name__ == "__main__":
    main()
