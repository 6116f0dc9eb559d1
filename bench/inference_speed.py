#!/usr/bin/env python
"""Inference speed levers on a CPU (issue 16), each against plain float32 in one process.

Levers (the config switches `Predictor`, `tools/predict.py`, evaluation and tiled inference share):
    fp32                  today's path
    bf16                  TEST.AMP.ENABLED True (bfloat16 autocast of the network; scores in float32)
    channels-last         MODEL.CHANNELS_LAST True
    channels-last + bf16  both

Models:
    semantic   the CamVid recipe's ResNet-18 model (--camvid-weights) through `Predictor` on CamVid
               val images at 480x360 (--data-root; a demo photo where CamVid is missing), and the
               same model on a 1024x2048 image (the val images resized);
    panoptic   Panoptic FPN ResNet-50 at 512x683, random weights, 1000 proposals and 100
               detections (box deltas zeroed, as bench/vs_detectron2.py does), and detectron2's
               PanopticFPN on the same weights where detectron2 is installed (else skipped).

With --compile, the semantic model also as "channels-last + bf16, compiled": its backbone and
head under torch.compile (inductor, static shapes), the first call at each size (the compilation)
reported apart.

For every lever: seconds per image (median of alternating rounds, order reversed every other
round), the ratio to fp32, and the share of segmentation_image pixels that differ from fp32's;
then where the time goes, stage by stage, for fp32 and the fastest lever.

    .venv/bin/python bench/inference_speed.py [--quick] [--threads 2] [--parts semantic panoptic] [--compile]
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402  (sets up the import path of the repository)

LEVERS = {
    "fp32": [],
    "bf16": ["TEST.AMP.ENABLED", "True"],
    "channels-last": ["MODEL.CHANNELS_LAST", "True"],
    "channels-last + bf16": ["MODEL.CHANNELS_LAST", "True", "TEST.AMP.ENABLED", "True"],
}
COMPILED = "channels-last + bf16, compiled"


def parse_args():
    p = common.base_parser(__doc__)
    common.add_data_root(p)
    p.add_argument("--camvid-weights", default=os.path.join(common.REPO_ROOT, "output", "camvid_semantic_R_18",
                                                             "model_final.pth"),
                   help="the CamVid recipe's trained model (default output/camvid_semantic_R_18/model_final.pth)")
    p.add_argument("--parts", nargs="+", choices=("semantic", "panoptic"), default=["semantic", "panoptic"])
    p.add_argument("--compile", action="store_true", help="also time the semantic model's channels-last + bf16 "
                                                          "under torch.compile")
    p.add_argument("--images", type=int, default=None, help="CamVid val images for the pixel comparison "
                                                            "(default 20; --quick 4)")
    return p.parse_args()


def camvid_images(data_root: str, count: int):
    """`count` CamVid val images (480x360 RGB), or a demo photo resized to 360x480 when CamVid is missing."""
    import model_overhead
    from segdet.utils.image_io import read_image

    folder = os.path.join(data_root, "camvid", "val")
    if os.path.isdir(folder):
        names = sorted(os.listdir(folder))[:count]
        return [read_image(os.path.join(folder, n)) for n in names], f"{len(names)} CamVid val images"
    image, note = model_overhead.input_image(360, 480)
    return [image], note


def differing_share(outputs, reference) -> float:
    """Share of segmentation_image pixels that differ between two lists of outputs."""
    differ = sum(int((a["segmentation_image"] != b["segmentation_image"]).sum()) for a, b in zip(outputs, reference))
    total = sum(b["segmentation_image"].numel() for b in reference)
    return differ / total


def lever_rows(times: dict, outputs: dict, per: int, extra: dict | None = None):
    """Table rows: lever, s per image, x fp32, share of pixels that differ from fp32."""
    stats = {n: common.summary(t) for n, t in times.items()}
    base = stats["fp32"]["median"]
    rows, results = [], {}
    for name, s in stats.items():
        share = differing_share(outputs[name], outputs["fp32"]) if name in outputs else None
        rows.append([name, s["median"] / per, common.ratio(s["median"], base),
                     "-" if share is None else f"{100 * share:.3f} %"])
        results[name] = dict(s, seconds_per_image=s["median"] / per, ratio_to_fp32=common.ratio(s["median"], base),
                             differing_pixel_share=share, samples=times[name], **(extra or {}).get(name, {}))
    return rows, results


def semantic_part(args, rounds: int, warmup: int) -> dict:
    """The CamVid model through Predictor at 480x360 and at 1024x2048."""
    import cv2
    import torch

    from segdet.inference.predictor import Predictor

    if not os.path.isfile(args.camvid_weights):
        raise SystemExit(f"{args.camvid_weights}: no such model file; train the CamVid recipe (bench/accuracy.py) "
                         "or give --camvid-weights")
    count = args.images or (4 if args.quick else 20)
    images, note = camvid_images(args.data_root, count)
    predictors = {n: Predictor.from_checkpoint(args.camvid_weights, ["MODEL.DEVICE", "cpu", *o])
                  for n, o in LEVERS.items()}
    compiled = COMPILED if args.compile else None
    if compiled:
        predictors[compiled] = Predictor.from_checkpoint(args.camvid_weights,
                                                         ["MODEL.DEVICE", "cpu", *LEVERS["channels-last + bf16"]])
        for part in (predictors[compiled].model.backbone, predictors[compiled].model.sem_seg_head):
            part.compile(dynamic=False)
    results = {"input": note, "weights": args.camvid_weights}
    large = [cv2.resize(im, (2048, 1024), interpolation=cv2.INTER_LINEAR) for im in images[:2]]
    for label, batch, timed_images in (("480x360", images, images[:4]), ("1024x2048", large, large[:1])):
        if compiled:
            with torch.inference_mode():
                start = time.perf_counter()
                predictors[compiled](batch[0], return_scores=False)
            results[f"compile_seconds_{label}"] = time.perf_counter() - start
            print(f"{compiled}: first call at {label} (compiling) {results[f'compile_seconds_{label}']:.1f} s",
                  flush=True)
        with torch.inference_mode():
            outputs = {n: [p(im, return_scores=False) for im in batch] for n, p in predictors.items()}
        times = common.alternate({n: (lambda p=p: [p(im, return_scores=False) for im in timed_images])
                                  for n, p in predictors.items()}, rounds, warmup)
        rows, res = lever_rows(times, outputs, len(timed_images))
        common.print_table(rows, ["lever", "s / image", "x fp32", "pixels differing from fp32"],
                           title=f"CamVid semantic ResNet-18 through Predictor, {label} ({len(batch)} images compared, "
                                 f"{len(timed_images)} timed per round, {rounds} rounds)")
        results[label] = res
    results["stages"] = semantic_stages(predictors, images[0], max(2, rounds // 2))
    return results


def semantic_stages(predictors, image, rounds: int) -> dict:
    """Seconds per stage of one 480x360 image: resize + tensor, network, scores + argmax, files."""
    import tempfile

    import numpy as np
    import torch

    from segdet.data.transforms.augmentation import apply_augmentations
    from segdet.inference.writers import write_confidence, write_overlay, write_segmentation

    by_lever = {}
    folder = tempfile.mkdtemp(prefix="segdet-inference-speed-")
    for name in ("fp32", "channels-last + bf16"):
        p = predictors[name]
        model, h, w = p.model, image.shape[0], image.shape[1]
        s = {}

        def preprocess():
            resized, _ = apply_augmentations(p.augmentations, image, np.random.default_rng(0))
            s["images"] = model.preprocess_image([{"image": torch.from_numpy(
                np.ascontiguousarray(resized.transpose(2, 0, 1)))}])

        stages = {
            "preprocess (resize, normalize)": preprocess,
            "network (backbone + semantic head)": lambda: s.__setitem__(
                "logits", model.semantic_logits(s["images"].tensors)),
            "semantic postprocess (scores, argmax)": lambda: s.__setitem__("out", model.semantic_result(
                s["logits"][0], s["images"].image_sizes[0], h, w)),
            "writing the files (PNG, confidence PNG, overlay JPEG)": lambda: (
                write_segmentation(os.path.join(folder, "x.png"), s["out"]["segmentation_image"], p.metadata),
                write_confidence(os.path.join(folder, "x_confidence.png"), s["out"]["segmentation_confidence"]),
                write_overlay(os.path.join(folder, "x_overlay.jpg"), image, s["out"], p.metadata)),
        }
        by_lever[name] = common.stage_times(stages, rounds)
    print_stages(by_lever, f"Where the time goes, one 480x360 image (median of {rounds} passes per stage)")
    return by_lever


def print_stages(by_lever: dict[str, dict[str, float]], title: str) -> None:
    names = list(next(iter(by_lever.values())))
    levers = list(by_lever)
    rows = [[n, *(by_lever[lv][n] for lv in levers)] for n in names]
    rows.append(["sum", *(sum(by_lever[lv].values()) for lv in levers)])
    common.print_table(rows, ["stage", *(f"{lv} s" for lv in levers)], title=title)


def panoptic_part(args, rounds: int, warmup: int) -> dict:
    """Panoptic FPN R-50 at 512x683, 100 detections, every lever (and detectron2 where installed)."""
    import torch

    import model_overhead
    import vs_detectron2
    from segdet.modeling import build_model

    h, w = (256, 256) if args.quick else (512, 683)
    D, P = (20, 100) if args.quick else (100, 1000)
    C, K = 81, 80
    md = model_overhead.metadata(C, K)
    torch.manual_seed(0)
    models = {}
    for name, opts in LEVERS.items():
        cfg = model_overhead.segdet_cfg(50, C, K, D, P)
        cfg.merge_from_list(opts)
        models[name] = build_model(cfg, md).eval()
    vs_detectron2.zero_box_deltas(models["fp32"], [])
    for name, model in models.items():
        model.load_state_dict(models["fp32"].state_dict())
    image, note = model_overhead.input_image(h, w)
    inputs = [{"image": torch.from_numpy(image.transpose(2, 0, 1).copy()), "height": h, "width": w}]

    def call(model):
        def run():
            with torch.inference_mode():
                return model(inputs)[0]
        return run

    candidates = {n: call(m) for n, m in models.items()}
    d2_note = "detectron2 not installed: skipped"
    try:
        from detectron2.modeling import PanopticFPN

        from segdet.d2 import SegdetPanopticFPN
    except ImportError:
        PanopticFPN = None
    if PanopticFPN is not None:
        d2_cfg = vs_detectron2.detectron2_cfg(C, K, D, P)
        d2 = SegdetPanopticFPN(d2_cfg, metadata=md).eval()
        d2_plain = PanopticFPN(**{k: getattr(d2, k) for k in ("backbone", "proposal_generator", "roi_heads")},
                               sem_seg_head=d2.sem_seg_head, pixel_mean=d2_cfg.MODEL.PIXEL_MEAN,
                               pixel_std=d2_cfg.MODEL.PIXEL_STD).eval()
        vs_detectron2.zero_box_deltas(models["fp32"], [d2])
        candidates["detectron2 PanopticFPN (fp32)"] = call(d2_plain)
        d2_note = "detectron2's PanopticFPN on its own random weights, box deltas zeroed the same way"
    outputs, counts = {}, {}

    def check(name, out):
        counts.setdefault(name, set()).add(len(out["instances"]))
        if name in models:
            outputs[name] = [{"segmentation_image": out["segmentation_image"]}]

    times = common.alternate(candidates, rounds, warmup, on_result=check)
    rows, res = lever_rows(times, outputs, 1, {n: {"detections": sorted(c)} for n, c in counts.items()})
    if "detectron2 PanopticFPN (fp32)" in times:
        d2_median = common.summary(times["detectron2 PanopticFPN (fp32)"])["median"]
        for row, (name, r) in zip(rows, res.items()):
            r["ratio_to_detectron2"] = common.ratio(r["median"], d2_median)
            row.append(r["ratio_to_detectron2"])
    headers = ["model", "s / image", "x fp32", "pixels differing from fp32"]
    if len(rows[0]) > len(headers):
        headers.append("x detectron2")
    print("Detections per image: " + "; ".join(f"{n}: {sorted(c)}" for n, c in counts.items()), flush=True)
    common.print_table(rows, headers, title=f"Panoptic FPN R-50, {h}x{w}, {P} proposals, {D} detections, "
                                            f"{rounds} alternating rounds; {d2_note}")
    by_lever = {name: common.stage_times(panoptic_stages(models[name], inputs, h, w), max(2, rounds // 2))
                for name in ("fp32", "channels-last + bf16")}
    print_stages(by_lever, "Where the time goes, Panoptic FPN R-50 (median per stage)")
    return {"input": note, "size": [h, w], "proposals": P, "detections": D, "detectron2": d2_note,
            "levers": res, "stages": by_lever}


def panoptic_stages(model, inputs, h, w):
    """segdet's PanopticFPN inference stage by stage (name -> call, each on the previous one's
    result); the network stages under the model's inference autocast, their results in float32
    as `logits_and_detections` gives them."""
    from segdet.utils.precision import as_float32_nchw

    s = {}

    def network(key, call):
        def run():
            with model.inference_autocast():
                s[key] = call()
        return run

    def to_float():
        s["logits"] = as_float32_nchw(s["logits"])
        s["detections"] = [{k: v.float() if v.is_floating_point() else v for k, v in d.items()}
                           for d in s["detections"]]

    size = lambda: s["images"].image_sizes[0]  # noqa: E731
    return {
        "preprocess": lambda: s.__setitem__("images", model.preprocess_image(inputs)),
        "backbone (ResNet + FPN)": network("features", lambda: model.backbone(s["images"].tensors)),
        "semantic head": network("logits", lambda: model.sem_seg_head(s["features"])),
        "RPN": network("proposals", lambda: model.rpn(s["images"], s["features"])[0]),
        "RoI heads (box + mask)": network("detections", lambda: model.roi_heads(
            s["features"], s["proposals"], s["images"].image_sizes)[0]),
        "to float32 (NCHW)": to_float,
        "semantic postprocess": lambda: s.__setitem__("semantic", model.semantic_result(s["logits"][0], size(), h, w)),
        "instance postprocess (paste masks)": lambda: s.__setitem__(
            "instances", model.instances_result(s["detections"][0], size(), h, w)),
        "panoptic fusion": lambda: model.panoptic_result(s["instances"], s["semantic"]["segmentation_image"]),
    }


def main() -> None:
    args = parse_args()
    threads = common.setup_threads(args.threads)
    rounds = args.rounds or (2 if args.quick else 6)
    warmup = args.warmup if args.warmup is not None else 1
    info = common.machine_info()
    common.print_machine(info)
    results = {}
    if "semantic" in args.parts:
        results["semantic"] = semantic_part(args, rounds, warmup)
    if "panoptic" in args.parts:
        results["panoptic"] = panoptic_part(args, rounds, warmup)
    common.write_results(args.output or common.default_output("inference_speed", args.quick), "inference_speed", info,
                         {"threads": threads, "rounds": rounds, "warmup": warmup, "levers": LEVERS,
                          "quick": args.quick}, results)


if __name__ == "__main__":
    main()
