#!/usr/bin/env python
"""segdet against detectron2 (needs detectron2 built from source; README, "Inside detectron2").

inference: one process, alternating rounds after a warm-up, torch.inference_mode, one image
    without resize (512x683), ResNet-50 FPN 256, 81 semantic classes (80 things), 1000 proposals,
    100 detections per image, the same thread count for all:
      - segdet's standalone PanopticFPN (torchvision parts),
      - detectron2's PanopticFPN,
      - segdet.d2's SegdetPanopticFPN (detectron2's model with segdet's outputs), detectron2's weights.
    Random weights make arbitrary boxes, and detectron2's RPN then keeps a handful of proposals:
    the box-delta layers of both RPNs and both box heads are zeroed, so that proposals are
    anchors and detections are proposals; score threshold 0, so the cap decides the count
    (checked, printed). Then where each spends its time, stage by stage.

training: the demo recipe, same iterations and data, in two processes one after the other:
    tools/train_net.py --config-file configs/demo/quickstart.yaml (segdet's trainer) and
    tools/train_net_d2.py --config-file configs/detectron2/demo.yaml (detectron2's trainer, segdet's
    parts): seconds per iteration, and test mean_iou, segm AP and PQ on demo_fruit_test.
    Targets: segdet.d2 within 0.02 mean_iou and 3 AP points of the standalone.

    python bench/vs_detectron2.py inference --threads 2
    python bench/vs_detectron2.py training [--parallel] [--opts SOLVER.MAX_ITER 150 ...]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402  (sets up the import path of the repository)

MEAN_IOU_TOLERANCE = 0.02
AP_TOLERANCE = 3.0


def parse_args():
    p = common.base_parser(__doc__.splitlines()[0])
    p.add_argument("part", choices=("inference", "training"))
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"), help="default 512 683")
    p.add_argument("--detections", type=int, default=None, help="per-image cap (default 100; --quick 20)")
    p.add_argument("--proposals", type=int, default=None, help="RPN proposals after NMS (default 1000)")
    p.add_argument("--parallel", action="store_true",
                   help="training: run both trainers at the same time (each then has about half the machine)")
    p.add_argument("--opts", nargs="*", default=[], metavar="KEY VALUE",
                   help="training: overrides given to both tools (e.g. SOLVER.MAX_ITER 20 for a check)")
    return p.parse_args()


# ---------------------------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------------------------

def detectron2_cfg(num_classes: int, num_things: int, detections: int, proposals: int):
    """detectron2's Panoptic FPN base config at segdet's settings (RGB, BN, sampling ratio 2)."""
    from segdet.d2 import load_config

    return load_config(os.path.join(common.REPO_ROOT, "configs", "detectron2", "Base-Segdet-PanopticFPN.yaml"), [
        "MODEL.DEVICE", "cpu", "MODEL.RESNETS.DEPTH", "50", "MODEL.RESNETS.NORM", "BN",
        "MODEL.BACKBONE.FREEZE_AT", "0", "MODEL.SEM_SEG_HEAD.NUM_CLASSES", str(num_classes),
        "MODEL.ROI_HEADS.NUM_CLASSES", str(num_things), "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0",
        "MODEL.RPN.PRE_NMS_TOPK_TEST", "1000", "MODEL.RPN.POST_NMS_TOPK_TEST", str(proposals),
        "TEST.DETECTIONS_PER_IMAGE", str(detections),
        "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO", "2", "MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO", "2",
        "MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS", "[]",
    ])


def zero_box_deltas(segdet_model, d2_models) -> None:
    import torch

    layers = [segdet_model.rpn.head.bbox_pred, segdet_model.roi_heads.box_predictor.bbox_pred]
    for m in d2_models:
        layers += [m.proposal_generator.rpn_head.anchor_deltas, m.roi_heads.box_predictor.bbox_pred]
    with torch.no_grad():
        for layer in layers:
            layer.weight.zero_()
            layer.bias.zero_()


def segdet_stages(model, inputs, h, w):
    """segdet's forward pass, stage by stage: name -> call (each uses the previous one's result)."""
    from segdet.modeling.postprocess import combine_semantic_and_instances, detector_postprocess

    s = {}
    return {
        "preprocess": lambda: s.__setitem__("images", model.preprocess_image(inputs)),
        "backbone (ResNet + FPN)": lambda: s.__setitem__("features", model.backbone(s["images"].tensors)),
        "semantic head": lambda: s.__setitem__("logits", model.sem_seg_head(s["features"])),
        "RPN": lambda: s.__setitem__("proposals", model.rpn(s["images"], s["features"])[0]),
        "RoI heads (box + mask)": lambda: s.__setitem__("detections", model.roi_heads(
            s["features"], s["proposals"], s["images"].image_sizes)[0]),
        "semantic postprocess": lambda: s.__setitem__("semantic", model.semantic_result(
            s["logits"][0], s["images"].image_sizes[0], h, w)),
        "instance postprocess (paste masks)": lambda: s.__setitem__("instances", detector_postprocess(
            s["detections"][0], s["images"].image_sizes[0], h, w, model.thing_class_ids)),
        "panoptic fusion": lambda: combine_semantic_and_instances(
            s["instances"], s["semantic"]["segmentation_image"], model.combine_overlap_threshold,
            model.combine_stuff_area_threshold, model.combine_instances_score_threshold, model.stuff_class_ids),
    }


def detectron2_stages(model, inputs, h, w):
    """detectron2's PanopticFPN.inference, stage by stage."""
    from detectron2.modeling.meta_arch.panoptic_fpn import combine_semantic_and_instance_outputs
    from detectron2.modeling.postprocessing import detector_postprocess, sem_seg_postprocess

    s = {}
    return {
        "preprocess": lambda: s.__setitem__("images", model.preprocess_image(inputs)),
        "backbone (ResNet + FPN)": lambda: s.__setitem__("features", model.backbone(s["images"].tensor)),
        "semantic head": lambda: s.__setitem__("logits", model.sem_seg_head(s["features"], None)[0]),
        "RPN": lambda: s.__setitem__("proposals", model.proposal_generator(s["images"], s["features"], None)[0]),
        "RoI heads (box + mask)": lambda: s.__setitem__("detections", model.roi_heads(
            s["images"], s["features"], s["proposals"], None)[0]),
        "semantic postprocess": lambda: s.__setitem__("semantic", sem_seg_postprocess(
            s["logits"][0], s["images"].image_sizes[0], h, w)),
        "instance postprocess (paste masks)": lambda: s.__setitem__("instances", detector_postprocess(
            s["detections"][0], h, w)),
        "panoptic fusion": lambda: combine_semantic_and_instance_outputs(
            s["instances"], s["semantic"].argmax(dim=0), model.combine_overlap_thresh,
            model.combine_stuff_area_thresh, model.combine_instances_score_thresh),
    }


def inference(args) -> None:
    import torch
    from detectron2.modeling import PanopticFPN

    import model_overhead
    from segdet.d2 import SegdetPanopticFPN
    from segdet.modeling import build_model

    threads = common.setup_threads(args.threads)
    h, w = args.size or ((256, 256) if args.quick else (512, 683))
    rounds = args.rounds or (2 if args.quick else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    D = args.detections or (20 if args.quick else 100)
    P = args.proposals or (100 if args.quick else 1000)
    C, K = 81, 80
    info = common.machine_info()
    common.print_machine(info)

    torch.manual_seed(0)
    md = model_overhead.metadata(C, K)
    sd = build_model(model_overhead.segdet_cfg(50, C, K, D, P), md).eval()
    d2_cfg = detectron2_cfg(C, K, D, P)
    d2 = SegdetPanopticFPN(d2_cfg, metadata=md).eval()
    # detectron2's own PanopticFPN over the very same modules (weights).
    d2_plain = PanopticFPN(**{k: getattr(d2, k) for k in ("backbone", "proposal_generator", "roi_heads")},
                           sem_seg_head=d2.sem_seg_head, pixel_mean=d2_cfg.MODEL.PIXEL_MEAN,
                           pixel_std=d2_cfg.MODEL.PIXEL_STD).eval()
    zero_box_deltas(sd, [d2])  # d2_plain shares d2's modules
    image, image_note = model_overhead.input_image(h, w)
    tensor = torch.from_numpy(image.transpose(2, 0, 1).copy())
    inputs = [{"image": tensor, "height": h, "width": w}]
    print(f"Input: {image_note}; ResNet-50 FPN 256, {C} classes ({K} things), {P} proposals, {D} detections/image, "
          f"{threads} threads; box deltas zeroed in both RPNs and box heads", flush=True)

    def call(model):
        def run():
            with torch.inference_mode():
                return model(inputs)[0]
        return run

    candidates = {"segdet PanopticFPN (standalone)": call(sd), "detectron2 PanopticFPN": call(d2_plain),
                  "segdet.d2 SegdetPanopticFPN": call(d2)}
    counts: dict[str, set] = {}
    proposals: dict[str, int] = {}

    def check(name, out):
        counts.setdefault(name, set()).add(len(out["instances"]))

    with torch.inference_mode():
        proposals["segdet"] = len(sd.rpn(sd.preprocess_image(inputs), sd.backbone(
            sd.preprocess_image(inputs).tensors))[0][0])
        images = d2.preprocess_image(inputs)
        proposals["detectron2"] = len(d2.proposal_generator(images, d2.backbone(images.tensor), None)[0][0])
    times = common.alternate(candidates, rounds, warmup, on_result=check)
    stats = {n: common.summary(t) for n, t in times.items()}
    base = stats["detectron2 PanopticFPN"]["median"]
    equal = all(c == {D} for c in counts.values()) and all(p == P for p in proposals.values())
    print("Proposals per image: " + "; ".join(f"{n}: {p}" for n, p in proposals.items()) + ". Detections per image: "
          + "; ".join(f"{n}: {sorted(c)}" for n, c in counts.items()), flush=True)
    if not equal:
        print(f"WARNING: not {P} proposals and {D} detections everywhere: the ratio is not like for like", flush=True)
    common.print_table([[n, s["median"], s["min"], s["max"], common.ratio(s["median"], base)]
                        for n, s in stats.items()], ["model", "median s", "min s", "max s", "x detectron2"],
                       title=f"Forward pass of one {h}x{w} image, {rounds} alternating rounds")

    stage_rounds = max(2, rounds // 2)
    by_stage = {"segdet": common.stage_times(segdet_stages(sd, inputs, h, w), stage_rounds),
                "detectron2": common.stage_times(detectron2_stages(d2_plain, inputs, h, w), stage_rounds)}
    names = list(by_stage["segdet"])
    common.print_table([[n, by_stage["segdet"][n], by_stage["detectron2"][n],
                         common.ratio(by_stage["segdet"][n], by_stage["detectron2"][n])] for n in names]
                       + [["sum", sum(by_stage["segdet"].values()), sum(by_stage["detectron2"].values()),
                           common.ratio(sum(by_stage["segdet"].values()), sum(by_stage["detectron2"].values()))]],
                       ["stage", "segdet s", "detectron2 s", "ratio"],
                       title=f"Where the time goes (median of {stage_rounds} passes per stage)")
    settings = {"input_size": [h, w], "input": image_note, "depth": 50, "num_classes": C, "num_things": K,
                "proposals": P, "detections_per_image": D, "threads": threads, "rounds": rounds, "warmup": warmup,
                "box_deltas": "zeroed", "quick": args.quick}
    results = {"forward": {n: dict(s, ratio_to_detectron2=common.ratio(s["median"], base), samples=times[n])
                           for n, s in stats.items()},
               "proposals_per_image": proposals, "detections_per_image": {n: sorted(c) for n, c in counts.items()},
               "like_for_like": equal, "stages": by_stage,
               "segdet_over_detectron2": common.ratio(stats["segdet PanopticFPN (standalone)"]["median"], base)}
    common.write_results(args.output or common.default_output("vs_detectron2_inference", args.quick),
                         "vs_detectron2_inference", info, settings, results)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------

def _start(tool: str, config: str, output_dir: str, opts: list[str]):
    command = [sys.executable, os.path.join("tools", tool), "--config-file", config, "OUTPUT_DIR", output_dir, *opts]
    print("$ " + " ".join(command), flush=True)
    log = open(output_dir + ".log", "w")
    return command, log, time.perf_counter(), subprocess.Popen(command, cwd=common.REPO_ROOT, stdout=log,
                                                              stderr=subprocess.STDOUT)


def _finish(run, output_dir: str) -> dict:
    command, log, start, process = run
    code = process.wait()
    wall = time.perf_counter() - start
    log.close()
    if code:
        raise SystemExit(f"{command[1]} failed (exit {code}); see {log.name}")
    with open(os.path.join(output_dir, "metrics.json")) as f:
        times = [json.loads(line)["time"] for line in f if '"time"' in line]
    with open(os.path.join(output_dir, "inference", "demo_fruit_test", "results.json")) as f:
        results = json.load(f)
    return {"command": " ".join(command), "wall_s": wall, "s_per_iter_median_of_logged": common.summary(times)["median"],
            "mean_iou": results["sem_seg"]["mean_iou"], "segm_AP": results["segm"]["AP"],
            "bbox_AP": results["bbox"]["AP"], "PQ": results["panoptic_seg"]["PQ"]}


def training(args) -> None:
    info = common.machine_info()
    common.print_machine(info)
    root = os.path.join(common.REPO_ROOT, "output", "bench_vs_detectron2" + ("_quick" if args.quick else ""))
    os.makedirs(root, exist_ok=True)
    opts = list(args.opts) + (["SOLVER.MAX_ITER", "20", "TEST.EVAL_PERIOD", "0"] if args.quick else [])
    jobs = {"segdet trainer": ("train_net.py", "configs/demo/quickstart.yaml", os.path.join(root, "segdet")),
            "detectron2 trainer, segdet parts": ("train_net_d2.py", "configs/detectron2/demo.yaml",
                                                 os.path.join(root, "detectron2"))}
    runs = {}
    if args.parallel:  # both at once: on a shared machine, load changes hit both alike
        started = {name: _start(tool, config, out, opts) for name, (tool, config, out) in jobs.items()}
        runs = {name: _finish(started[name], jobs[name][2]) for name in jobs}
    else:
        for name, (tool, config, out) in jobs.items():
            runs[name] = _finish(_start(tool, config, out, opts), out)
    keys = ["wall_s", "s_per_iter_median_of_logged", "mean_iou", "segm_AP", "bbox_AP", "PQ"]
    common.print_table([[n] + [r[k] for k in keys] for n, r in runs.items()], ["run"] + keys,
                       title="Demo recipe, test split (demo_fruit_test)")
    a, b = runs["segdet trainer"], runs["detectron2 trainer, segdet parts"]
    ok = abs(a["mean_iou"] - b["mean_iou"]) <= MEAN_IOU_TOLERANCE and abs(a["segm_AP"] - b["segm_AP"]) <= AP_TOLERANCE
    print(f"|mean_iou difference| {abs(a['mean_iou'] - b['mean_iou']):.4f} (<= {MEAN_IOU_TOLERANCE}), |segm AP "
          f"difference| {abs(a['segm_AP'] - b['segm_AP']):.2f} (<= {AP_TOLERANCE}): {common.verdict(ok)}", flush=True)
    common.write_results(args.output or common.default_output("vs_detectron2_training", args.quick),
                         "vs_detectron2_training", info, {"opts": opts, "parallel": args.parallel, "quick": args.quick}, runs,
                         {"mean_iou_tolerance": MEAN_IOU_TOLERANCE, "segm_AP_tolerance": AP_TOLERANCE, "pass": ok})


if __name__ == "__main__":
    arguments = parse_args()
    inference(arguments) if arguments.part == "inference" else training(arguments)
