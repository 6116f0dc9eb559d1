"""tools/train_net.py --eval-only with TEST.ENGINE onnxruntime: the same confusion matrix as the
torch engine (the engine replaces only the logits step the evaluation runs through)."""
import json

import torch

from segdet.checkpoint import SegdetCheckpointer
from segdet.data.resolve import resolve_metadata
from segdet.modeling import build_model
from tests.engine.test_cli_train import run_train_net


def test_eval_only_with_onnxruntime_equals_torch(tiny_cfg_factory, tmp_path):
    cfg, config_file = tiny_cfg_factory(mask_on=False)
    metadata = resolve_metadata(cfg, ["tiny_val"])
    torch.manual_seed(0)
    model = build_model(cfg, metadata)
    with torch.no_grad():
        torch.nn.init.normal_(model.sem_seg_head.predictor.weight, std=1.0)  # several classes predicted
    SegdetCheckpointer(model, str(tmp_path), extra_data={"metadata": metadata.to_dict(), "config": cfg.dump()}
                       ).save("model")
    matrices = {}
    for engine in ("torch", "onnxruntime"):
        out = tmp_path / engine
        proc = run_train_net(["--config-file", config_file, "--eval-only", "MODEL.WEIGHTS", str(tmp_path / "model.pth"),
                              "OUTPUT_DIR", str(out), "TEST.ENGINE", engine, "DATALOADER.CHECK_DATASET", "False"])
        assert proc.returncode == 0, proc.stderr[-3000:]
        results = json.load(open(out / "inference" / "tiny_val" / "results.json"))
        matrices[engine] = results["sem_seg"]["pixel_confusion_matrix"]
    assert "ONNX Runtime" in (tmp_path / "onnxruntime" / "log.txt").read_text()
    assert sum(v > 0 for row in matrices["torch"] for v in row) > 1
    assert matrices["onnxruntime"] == matrices["torch"]
