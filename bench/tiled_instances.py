#!/usr/bin/env python
"""Tiled instances on mosaics: segm and bbox AP of tiled inference against per-image inference
and against SAHI's sliced prediction with the same segdet model, and seconds per mosaic.

A mosaic is columns x rows dataset images side by side, its ground truth their annotations moved
by each image's offset (bench/mosaics.py). The predictions of every mosaic, all with one model:
- per image: each image predicted alone (whole-image inference), its instances moved into the
  mosaic: the reference, what the model does when it sees each image whole;
- tiled: `Predictor(mosaic, tile_size, overlap)`: segdet's tiled inference, instances stitched;
- tiles = images: tiled inference with one tile per mosaic cell, no overlap: nothing to stitch,
  no neighbour in view; what the mosaic's cells cost by themselves (their padding, in the
  model's pixel mean, where images differ in size; for same-size images it is exactly
  per-image inference);
- SAHI: `sahi.predict.get_sliced_prediction` over the same tiles (slice = tile size, same overlap
  ratio, `perform_standard_pred=False`: no extra whole-image pass), each slice predicted by the
  same segdet model (whole-image inference of the slice, every detection: confidence threshold
  0), masks handed to SAHI as its polygons. Twice: with the merge SAHI picks itself at that
  threshold (NMS, IOU 0.5) and with its documented default forced (GREEDYNMM, IOS 0.5). Needs
  `sahi` (a bench-only dependency: a separate virtual environment, see BENCHMARKS.md);
  --no-sahi skips it.
All evaluated by the same COCOeval against the same mosaic ground truth. Also counted: the
confident detections (score >= 0.5) *off one image*, less than 90 % of whose box lies in one
image of the mosaic (spanning two images, or in the fill between them); per-image inference
cannot make them (its boxes lie in the image).

    python bench/tiled_instances.py --weights output/demo_for_tiles/model_final.pth --dataset demo
    SEGDET_DATASETS=/work/shared/datasets python bench/tiled_instances.py \\
        --weights output/pennfudan_for_tiles/model_final.pth --dataset pennfudan_val --columns 3 --rows 3

Target: tiled segm AP within 2 points of per-image.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import mosaics  # noqa: E402

AP_TOLERANCE = 2.0
CONFIDENT = 0.5
IN_ONE_IMAGE = 0.9  # share of a box in one image below which a detection is "off one image"


def parse_args():
    p = common.base_parser(__doc__.splitlines()[1])
    p.add_argument("--weights", required=True, help="a segdet checkpoint with instances")
    p.add_argument("--dataset", default="demo",
                   help="'demo' (fresh demo images, --seed) or a registered dataset name, e.g. pennfudan_val")
    p.add_argument("--num-images", type=int, default=64, help="demo images to draw (default 64)")
    p.add_argument("--seed", type=int, default=1000, help="demo seed (the training data's is 0)")
    p.add_argument("--columns", type=int, default=4)
    p.add_argument("--rows", type=int, default=4)
    p.add_argument("--tile", type=int, default=256, help="tile (slice) side in pixels (default 256)")
    p.add_argument("--overlap", type=float, default=0.5, help="tile overlap ratio (default 0.5)")
    p.add_argument("--gutter", type=int, default=0,
                   help="black pixels between the images (default 0); at least the tile size: no tile sees two images")
    p.add_argument("--no-sahi", action="store_true", help="skip SAHI")
    return p.parse_args()


def shifted_instances(instances, top: int, left: int, size: tuple[int, int]):
    """A cell's whole-image instances moved into the mosaic (masks as crops)."""
    from segdet.structures.cropped_masks import CroppedMasks, instance_mask_crops
    from segdet.structures.instances import Instances

    crops = instance_mask_crops(instances)
    origins = np.asarray([crops.region(k)[:2] for k in range(len(crops))], dtype=np.int64).reshape(-1, 2)
    moved = CroppedMasks(size, [crops.crop(k) for k in range(len(crops))], origins + [top, left])
    boxes = instances.pred_boxes + torch.tensor([left, top, left, top], dtype=torch.float32)
    return Instances(size, pred_boxes=boxes, scores=instances.scores, pred_classes=instances.pred_classes,
                     pred_mask_crops=moved)


def concat_results(per_cell: list[list[dict]]) -> list[dict]:
    return [r for results in per_cell for r in results]


def as_sahi_polygons(results: list[dict], size: tuple[int, int]) -> list[dict]:
    """The same results with each mask gone through SAHI's polygon form (its mask representation):
    what the polygons alone cost in AP, apart from the slicing and merging."""
    from sahi.utils.cv import get_coco_segmentation_from_bool_mask

    from segdet.structures.masks import rle_to_mask, segmentation_to_rle

    out = []
    for r in results:
        polygons = get_coco_segmentation_from_bool_mask(rle_to_mask(r["segmentation"]))
        if polygons:
            out.append(dict(r, segmentation=segmentation_to_rle(polygons, *size, where="polygons")))
    return out


def sahi_model(predictor):
    """SAHI's DetectionModel around a segdet Predictor (whole-image inference of each slice)."""
    from sahi.models.base import DetectionModel
    from sahi.prediction import ObjectPrediction
    from sahi.utils.cv import get_coco_segmentation_from_bool_mask

    names = predictor.metadata.class_names

    class SegdetSahiModel(DetectionModel):
        def load_model(self):
            raise RuntimeError("give the segdet Predictor as model=")

        def set_model(self, model, **kwargs):
            self.model = model
            self.category_mapping = {str(c): names[c] for c in model.metadata.thing_class_ids}

        def perform_inference(self, image: np.ndarray):
            self._original_predictions = [self.model(np.ascontiguousarray(image), tile_size=0)["instances"]]

        @property
        def num_categories(self):
            return len(self.category_mapping)

        @property
        def has_mask(self):
            return True

        @property
        def category_names(self):
            return list(self.category_mapping.values())

        def _create_object_prediction_list_from_original_predictions(self, shift_amount_list=[[0, 0]],
                                                                     full_shape_list=None):
            # As SAHI's own wrappers: one image's [shift_x, shift_y] may come unwrapped.
            if shift_amount_list is not None and isinstance(shift_amount_list[0], int):
                shift_amount_list = [shift_amount_list]
            if full_shape_list is not None and isinstance(full_shape_list[0], int):
                full_shape_list = [full_shape_list]
            shift = shift_amount_list[0] if shift_amount_list else [0, 0]
            full_shape = None if full_shape_list is None else full_shape_list[0]
            instances = self._original_predictions[0]
            predictions = []
            for k in range(len(instances)):
                score = float(instances.scores[k])
                if score <= self.confidence_threshold:
                    continue
                polygons = get_coco_segmentation_from_bool_mask(instances.pred_masks[k].numpy())
                if not polygons:
                    continue
                class_id = int(instances.pred_classes[k])
                predictions.append(ObjectPrediction(
                    bbox=instances.pred_boxes[k].tolist(), segmentation=polygons, category_id=class_id,
                    category_name=names[class_id], shift_amount=shift, score=score, full_shape=full_shape))
            self._object_prediction_list_per_image = [predictions]

    return SegdetSahiModel(model=predictor, device="cpu", confidence_threshold=0.0, load_at_init=True)


def sahi_results(prediction, image_id: str, size: tuple[int, int]) -> list[dict]:
    from segdet.structures.masks import segmentation_to_rle

    results = []
    for p in prediction.object_prediction_list:
        x0, y0, x1, y1 = p.bbox.to_xyxy()
        result = {"image_id": image_id, "category_id": int(p.category.id), "bbox": [x0, y0, x1 - x0, y1 - y0],
                  "score": float(p.score.value)}
        if p.mask is not None and p.mask.segmentation:
            result["segmentation"] = segmentation_to_rle(p.mask.segmentation, *size, where="SAHI prediction")
        results.append(result)
    return results


def main() -> None:
    args = parse_args()
    info = common.machine_info()
    info["torch_threads"] = common.setup_threads(args.threads)
    common.print_machine(info)

    from segdet.evaluation.coco_evaluation import coco_from_dict, convert_to_coco_dict, evaluate_coco_task
    from segdet.inference.predictor import Predictor
    from segdet.structures.coco import instances_to_coco_results

    predictor = Predictor.from_checkpoint(args.weights, ["MODEL.DEVICE", "cpu", "INPUT.MIN_SIZE_TEST", "0",
                                                         "INPUT.MAX_SIZE_TEST", "0"])
    metadata = predictor.metadata
    if args.dataset == "demo":
        cells = mosaics.demo_cells(args.num_images, args.seed)
    else:
        from segdet.data.builtin import register_builtin_datasets

        register_builtin_datasets()
        stored = Predictor.from_checkpoint(args.weights, ["MODEL.DEVICE", "cpu"]).cfg.INPUT
        # Cells at the size the model's own test-time resize gives them; no resize afterwards.
        cells = mosaics.pennfudan_cells(args.dataset, stored.MIN_SIZE_TEST, stored.MAX_SIZE_TEST)
    # Around images of different sizes, and in gutters: the model's pixel mean, which normalizes to
    # 0, as the model's own padding of an image alone.
    fill = tuple(int(round(v)) for v in predictor.cfg.MODEL.PIXEL_MEAN)
    built = mosaics.build_mosaics(cells, args.columns, args.rows, args.gutter, fill)
    if not built:
        raise SystemExit(f"{len(cells)} images: not enough for one {args.columns}x{args.rows} mosaic")
    size = built[0].image.shape[:2]
    print(f"{len(built)} mosaics of {args.columns}x{args.rows} images, {size[0]}x{size[1]} px; tiles of "
          f"{args.tile}, overlap {args.overlap}; {sum(len(m.annotations) for m in built)} objects", flush=True)
    sahi = None if args.no_sahi else sahi_model(predictor)
    if sahi is not None:
        from sahi.predict import get_sliced_prediction

    # Warm-up (lazy initialization) on the first cell.
    predictor(built[0].cells[0][0].image)
    sahi_merges = {"SAHI NMS/IOU": dict(postprocess_type="NMS", postprocess_match_metric="IOU"),
                   "SAHI GREEDYNMM/IOS": dict(postprocess_type="GREEDYNMM", postprocess_match_metric="IOS",
                                              force_postprocess_type=True)}
    from segdet.inference.tiling import TiledSegmenter

    cell_tiler = TiledSegmenter(predictor.model, (size[0] // args.rows, size[1] // args.columns), 0.0, batch_size=1)
    methods = {"per image": [], "tiles = images": [], "tiled": [], **{name: [] for name in sahi_merges},
               "per image, SAHI polygons": []}
    seconds = {name: 0.0 for name in methods}
    ground_truth = []
    for m, mosaic in enumerate(built):
        image_id = f"mosaic_{m}"
        ground_truth.append(dict(mosaic.dataset_dict, image_id=image_id, file_name=image_id))
        start = time.perf_counter()
        per_cell = [instances_to_coco_results(shifted_instances(predictor(cell.image)["instances"], top, left, size),
                                              image_id) for cell, top, left in mosaic.cells]
        seconds["per image"] += time.perf_counter() - start
        methods["per image"] += concat_results(per_cell)
        if sahi is not None:
            methods["per image, SAHI polygons"] += as_sahi_polygons(concat_results(per_cell), size)
        t, out = common.timed(lambda: cell_tiler(mosaic.image, return_scores=False))
        seconds["tiles = images"] += t
        methods["tiles = images"] += instances_to_coco_results(out["instances"], image_id)
        t, out = common.timed(lambda: predictor(mosaic.image, tile_size=args.tile, overlap=args.overlap,
                                                return_scores=False))
        seconds["tiled"] += t
        methods["tiled"] += instances_to_coco_results(out["instances"], image_id)
        for name, merge in sahi_merges.items() if sahi is not None else ():
            t, prediction = common.timed(lambda: get_sliced_prediction(
                mosaic.image, sahi, slice_height=args.tile, slice_width=args.tile,
                overlap_height_ratio=args.overlap, overlap_width_ratio=args.overlap,
                perform_standard_pred=False, postprocess_match_threshold=0.5, verbose=0, **merge))
            seconds[name] += t
            methods[name] += sahi_results(prediction, image_id, size)
        print(f"  mosaic {m + 1}/{len(built)}: per image {len(concat_results(per_cell))}, tiled "
              f"{len(out['instances'])} instances", flush=True)
    if sahi is None:
        for name in [*sahi_merges, "per image, SAHI polygons"]:
            del methods[name], seconds[name]
    else:
        seconds["per image, SAHI polygons"] = seconds["per image"]  # the same predictions
    placed = {f"mosaic_{m}": mosaic.cells for m, mosaic in enumerate(built)}

    coco_dict, id_map = convert_to_coco_dict(ground_truth, metadata)
    coco_gt = coco_from_dict(coco_dict)
    names = {c: metadata.class_names[c] for c in metadata.thing_class_ids}
    results, rows = {}, []
    for name, predictions in methods.items():
        mapped = [dict(r, image_id=id_map[r["image_id"]]) for r in predictions]
        results[name] = {task: evaluate_coco_task(coco_gt, mapped, task, sorted(id_map.values()), names)
                         for task in ("segm", "bbox")}
        results[name]["seconds_per_mosaic"] = seconds[name] / len(built)
        results[name]["instances"] = len(predictions)
        confident = [r for r in predictions if r["score"] >= CONFIDENT]
        results[name]["confident"] = len(confident)
        results[name]["confident_off_one_image"] = sum(
            mosaics.share_in_one_image(r["bbox"], placed[r["image_id"]]) < IN_ONE_IMAGE for r in confident)
        r = results[name]
        rows.append([name, r["segm"]["AP"], r["segm"]["AP50"], r["segm"]["AP75"], r["bbox"]["AP"],
                     len(predictions), f"{r['confident']} ({r['confident_off_one_image']})", r["seconds_per_mosaic"]])
    common.print_table(rows, ["method", "segm AP", "segm AP50", "segm AP75", "bbox AP", "instances",
                              f"score >= {CONFIDENT} (off one image)", "s/mosaic"],
                       title=f"{args.dataset}: {len(built)} mosaics {size[0]}x{size[1]}, tile {args.tile}, "
                             f"overlap {args.overlap}, {info['torch_threads']} threads", floatfmt=".2f")
    gap = results["per image"]["segm"]["AP"] - results["tiled"]["segm"]["AP"]
    ok = abs(gap) <= AP_TOLERANCE
    print(f"tiled segm AP {results['tiled']['segm']['AP']:.2f} vs per image {results['per image']['segm']['AP']:.2f}: "
          f"tiled {-gap:+.2f} points; within {AP_TOLERANCE}: {common.verdict(ok)}", flush=True)
    settings = {"weights": args.weights, "dataset": args.dataset, "num_images": len(cells), "seed": args.seed,
                "columns": args.columns, "rows": args.rows, "gutter": args.gutter, "fill": list(fill), "mosaic_size": list(size), "mosaics": len(built),
                "tile": args.tile, "overlap": args.overlap, "threads": info["torch_threads"],
                "sahi": None if sahi is None else __import__("sahi").__version__}
    name = f"tiled_instances_{args.dataset}" + (f"_gutter{args.gutter}" if args.gutter else "")
    common.write_results(args.output or common.default_output(name, args.quick),
                         "tiled_instances", info, settings, results,
                         {"ap_tolerance": AP_TOLERANCE, "segm_ap_gap": gap, "pass": ok})


if __name__ == "__main__":
    main()
