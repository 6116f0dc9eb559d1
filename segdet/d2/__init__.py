"""segdet inside detectron2: segdet's parts registered in detectron2's registries and catalogs.

The one package that imports detectron2 (`import segdet` never does). Importing it registers:

    META_ARCH_REGISTRY      SegdetPanopticFPN, SegdetSemanticSegmentor
    SEM_SEG_HEADS_REGISTRY  SegdetSemSegFPNHead
    DatasetCatalog / MetadataCatalog   every segdet built-in dataset (more with `register_segdet_datasets(cfg)`)

and offers `add_segdet_config`, `load_config`, `SegdetDatasetMapper`, `SegdetSemSegEvaluator`,
`SegdetPanopticEvaluator`, `build_evaluator`, `SegdetTrainer` and `load_detectron2_model`.
See the README's "Inside detectron2".
"""
try:
    import detectron2  # noqa: F401
    import detectron2._C  # noqa: F401  (its compiled ops: a source build that did not compile fails here)
except ImportError as e:
    raise ImportError(
        f"segdet.d2 needs detectron2 ({e}); detectron2 is on no package registry: install it from its source "
        "(pip install --no-build-isolation -e <detectron2 checkout>, see the README section 'Inside detectron2')"
    ) from None

from segdet.d2.config import add_segdet_config, get_cfg, load_config  # noqa: E402
from segdet.d2.datasets import register_segdet_datasets, segdet_metadata  # noqa: E402
from segdet.d2.evaluation import SegdetPanopticEvaluator, SegdetSemSegEvaluator, build_evaluator  # noqa: E402
from segdet.d2.inference import load_detectron2_model  # noqa: E402
from segdet.d2.mapper import SegdetDatasetMapper  # noqa: E402
from segdet.d2.meta_arch import SegdetPanopticFPN, SegdetSemanticSegmentor  # noqa: E402
from segdet.d2.sem_seg_head import SegdetSemSegFPNHead  # noqa: E402
from segdet.d2.trainer import SegdetTrainer  # noqa: E402

register_segdet_datasets()

__all__ = [
    "SegdetDatasetMapper",
    "SegdetPanopticEvaluator",
    "SegdetPanopticFPN",
    "SegdetSemSegEvaluator",
    "SegdetSemSegFPNHead",
    "SegdetSemanticSegmentor",
    "SegdetTrainer",
    "add_segdet_config",
    "build_evaluator",
    "get_cfg",
    "load_config",
    "load_detectron2_model",
    "register_segdet_datasets",
    "segdet_metadata",
]
