#!/usr/bin/env python
"""tools/predict.py end to end on a folder of images: images/s with files written, for serial vs
background I/O, the torch vs the onnxruntime engine, batch size 1 vs 4, all in one run.

Each candidate is `predict_files` (what tools/predict.py runs) on the CamVid val images (101,
480x360) with the CamVid semantic model, writing every file (segmentation PNG, confidence PNG,
overlay JPEG, manifest) into a fresh folder; the candidates run in alternating rounds after a
warm-up on a few images (bench/common.py). Reported: median images/s, the ratio to the serial torch
batch-1 path (what tools/predict.py did before issue 16), the share of segmentation pixels that
differ from it, and whether the files are byte-identical to the same engine and batch size's
serial run (they must be: background I/O changes nothing but the speed).

    SEGDET_DATASETS=../shared/datasets .venv/bin/python bench/predict_throughput.py \\
        --weights output/camvid_semantic_R_18/model_final.pth

Without the model file: the CamVid config with random weights (said in the output; the speeds
hold, the differing pixels of a random model mean little).
"""
from __future__ import annotations

import glob
import itertools
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

CONFIG = os.path.join(common.REPO_ROOT, "configs", "camvid", "semantic_R_18.yaml")
# name -> (Predictor engine, config overrides)
ENGINES = {
    "torch": ("torch", []),
    "torch-bf16": ("torch", ["MODEL.CHANNELS_LAST", "True", "TEST.AMP.ENABLED", "True"]),
    "onnxruntime": ("onnxruntime", []),
}


def parse_args():
    p = common.base_parser(__doc__.splitlines()[1])
    common.add_data_root(p)
    p.add_argument("--weights", default=os.path.join(common.REPO_ROOT, "output", "camvid_semantic_R_18",
                                                     "model_final.pth"),
                   help="a segdet semantic model file (default: the CamVid recipe's, output/camvid_semantic_R_18)")
    p.add_argument("--io-workers", type=int, nargs="+", default=[0, 1, 2], help="io_workers values (0 = serial)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    p.add_argument("--engines", nargs="+", choices=sorted(ENGINES), default=["torch", "onnxruntime"],
                   help="torch-bf16: torch with MODEL.CHANNELS_LAST and TEST.AMP (bfloat16) on")
    p.add_argument("--images", type=int, default=None, help="use only the first N val images (--quick: 8)")
    return p.parse_args()


def random_weights_model(camvid: str, folder: str) -> str:
    """The CamVid config's model with random weights, saved as a segdet model file."""
    from segdet.checkpoint import SegdetCheckpointer
    from segdet.config import load_config
    from segdet.data.formats.camvid import camvid_dataset_metadata
    from segdet.modeling import build_model

    cfg = load_config(CONFIG, ["MODEL.DEVICE", "cpu"])
    metadata = camvid_dataset_metadata(camvid)
    model = build_model(cfg, metadata)
    SegdetCheckpointer(model, folder, extra_data={"metadata": metadata.to_dict(), "config": cfg.dump()}
                       ).save("random")
    return os.path.join(folder, "random.pth")


def main() -> None:
    args = parse_args()
    from segdet.data.label_codec import LabelCodec
    from segdet.inference.predict_files import predict_files
    from segdet.inference.predictor import Predictor

    threads = common.setup_threads(args.threads)
    info = common.machine_info()
    common.print_machine(info)
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    print(f"onnxruntime {ort_version}", flush=True)
    camvid = common.camvid_root(args.data_root)
    paths = sorted(glob.glob(os.path.join(camvid, "val", "*.png")))
    paths = paths[:args.images or (8 if args.quick else len(paths))]
    scratch = tempfile.mkdtemp(prefix="segdet-predict-bench-")
    weights = args.weights
    if not os.path.isfile(weights):
        print(f"{weights} not found: the CamVid config with RANDOM weights", flush=True)
        weights = random_weights_model(camvid, scratch)
    opts = ["MODEL.DEVICE", "cpu"]
    predictors = {}
    for engine in args.engines:
        kind, extra = ENGINES[engine]
        seconds, predictors[engine] = common.timed(lambda: Predictor.from_checkpoint(weights, opts + extra,
                                                                                     engine=kind))
        print(f"engine {engine}: ready in {seconds:.1f} s", flush=True)

    keys = list(itertools.product(args.engines, args.batch_sizes, args.io_workers))
    name = {k: f"{k[0]} batch {k[1]} io {k[2]}" for k in keys}
    folders = {k: os.path.join(scratch, name[k].replace(" ", "_")) for k in keys}

    def run(key, images):
        engine, batch, workers = key
        shutil.rmtree(folders[key], ignore_errors=True)
        summary = predict_files(predictors[engine], images, folders[key], batch_size=batch, io_workers=workers)
        assert summary.num_predicted == len(images)
        return len(images)

    for key in keys:  # warm-up: allocator, ONNX Runtime's first runs, thread pools
        run(key, paths[:4])
    rounds = args.rounds or (1 if args.quick else 3)
    times = common.alternate({name[k]: (lambda k=k: run(k, paths)) for k in keys}, rounds, warmup=0)

    # Outputs of the last round against the serial torch batch-1 path.
    reference = (args.engines[0], args.batch_sizes[0], args.io_workers[0])
    codec = LabelCodec(predictors[reference[0]].metadata)
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]

    def segmentations(key):
        return [codec.read(os.path.join(folders[key], f"{s}.png")) for s in stems]

    def file_bytes(key):
        return {f: open(os.path.join(folders[key], f), "rb").read() for f in sorted(os.listdir(folders[key]))
                if not f.endswith(".json")}  # the manifest names its folder

    ref_seg = segmentations(reference)
    total = sum(s.size for s in ref_seg)
    results, rows = {}, []
    ref_rate = len(paths) / common.summary(times[name[reference]])["median"]
    for key in keys:
        differing = sum(int((a != b).sum()) for a, b in zip(segmentations(key), ref_seg))
        serial = (key[0], key[1], 0)
        identical = file_bytes(key) == file_bytes(serial) if serial in folders else None
        median = common.summary(times[name[key]])["median"]
        rate = len(paths) / median
        results[name[key]] = {"engine": key[0], "batch_size": key[1], "io_workers": key[2],
                              "images_per_s": rate, "seconds": times[name[key]],
                              "differing_pixels": differing, "differing_share": differing / total,
                              "files_identical_to_serial": identical}
        rows.append([key[0], key[1], key[2] or "serial", rate, common.ratio(rate, ref_rate),
                     f"{100 * differing / total:.4f}", "n/a" if identical is None else ("yes" if identical else "NO")])
    common.print_table(rows, ["engine", "batch", "io workers", "images/s", "x serial torch batch 1",
                              "% pixels differing", "files = serial's"],
                       title=f"{len(paths)} CamVid val images (480x360), {rounds} rounds, {threads} torch threads")
    end_load = [round(v, 2) for v in os.getloadavg()]
    print(f"load average at the end: {end_load}")
    shutil.rmtree(scratch, ignore_errors=True)
    common.write_results(args.output or common.default_output("predict_throughput", args.quick),
                         "predict_throughput", {**info, "load_average_at_end": end_load},
                         {"weights": weights, "images": len(paths), "threads": threads, "rounds": rounds,
                          "onnxruntime": ort_version}, results)


if __name__ == "__main__":
    main()
