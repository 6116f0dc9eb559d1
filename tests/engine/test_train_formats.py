"""Each label format trains a few iterations and evaluates, from a DATASETS.CUSTOM entry (the tiny
CPU model of conftest.py on the 64x64 scene of tests/data/format_files.py)."""
import re

import pytest
import yaml

from segdet.config import load_config
from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.data.formats import register_from_config
from segdet.engine.defaults import default_setup
from segdet.engine.trainer import Trainer
from tests.data.format_files import WRITERS
from tests.engine.conftest import TINY_MODEL

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def tiny_config_text(entry_name: str, entry: dict, train: str, test: str, mask_on: bool, output: str) -> str:
    """conftest's tiny model with one DATASETS.CUSTOM entry instead of the fruit datasets."""
    model = TINY_MODEL.format(arch="PanopticFPN" if mask_on else "SemanticSegmentor", mask_on=mask_on,
                              root="", output=output, test="()")
    datasets = yaml.safe_dump({"DATASETS": {"TRAIN": [train], "TEST": [test], "CUSTOM": {entry_name: entry}}})
    return re.sub(r"DATASETS:\n(  .*\n)+", datasets, model)


# The json alone (polygons, as a labeling tool exports them) trains Panoptic FPN: case "coco".
@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_format_trains_and_evaluates(tmp_path, monkeypatch, fmt):
    # The confusion-matrix picture of ADE20K's 151 classes alone takes matplotlib ~20 s; the
    # pictures are tested elsewhere, the measures here.
    monkeypatch.setattr("segdet.visualization.confusion.plot_confusion_matrix", lambda *args, **kwargs: None)
    case = WRITERS[fmt](tmp_path / "data")
    entry_name = f"train_{fmt}"
    names = [f"{entry_name}_{split}" for split in case.names] or [entry_name]
    mask_on = bool(case.thing_class_ids)
    probe = load_config(text=tiny_config_text(entry_name, case.entry, names[0], names[-1], mask_on, str(tmp_path)))
    try:
        assert register_from_config(probe) == names
        meta = MetadataCatalog.get(names[0])
        cfg = load_config(text=tiny_config_text(entry_name, case.entry, names[0], names[-1], mask_on,
                                                str(tmp_path / "out")),
                          opts=["MODEL.SEM_SEG_HEAD.NUM_CLASSES", str(meta.num_classes),
                                "MODEL.ROI_HEADS.NUM_CLASSES", str(len(meta.thing_class_ids) or 1),
                                "SOLVER.MAX_ITER", "2", "SOLVER.WARMUP_ITERS", "1", "SOLVER.STEPS", "(1,)",
                                "SOLVER.CHECKPOINT_PERIOD", "100"])
        trainer = Trainer(default_setup(cfg))
        trainer.resume_or_load(resume=False)
        results = trainer.train()
    finally:
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
    assert 0.0 <= results["sem_seg"]["mean_iou"] <= 1.0
    assert ("segm" in results) == mask_on and ("panoptic_seg" in results) == mask_on
