"""Default configuration. Key names follow detectron2 wherever detectron2 has one.

Keys detectron2 lacks are marked "segdet:" in the comment above them.
"""
from segdet.config.config import CfgNode as CN

_C = CN()
_C.VERSION = 1

# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------
_C.MODEL = CN()
# A class registered in segdet.modeling.META_ARCH_REGISTRY: "PanopticFPN" (instances +
# semantic head, MASK_ON True) or "SemanticSegmentor" (semantic only, MASK_ON False).
_C.MODEL.META_ARCHITECTURE = "PanopticFPN"
# "auto" picks cuda when available, else cpu.
_C.MODEL.DEVICE = "auto"
# A segdet checkpoint, or a torchvision state_dict (ImageNet ResNet or COCO Mask R-CNN).
_C.MODEL.WEIGHTS = ""
_C.MODEL.MASK_ON = True
# Images are RGB in [0, 255]; these are torchvision's ImageNet statistics.
_C.MODEL.PIXEL_MEAN = [123.675, 116.28, 103.53]
_C.MODEL.PIXEL_STD = [58.395, 57.12, 57.375]
# segdet: weights and images in channels-last memory format (NHWC), in training and inference:
# on a CPU, oneDNN's convolutions are several times faster on it (BENCHMARKS.md).
_C.MODEL.CHANNELS_LAST = False
# segdet: an exponential moving average of the weights, updated after every step with
# ema = DECAY * ema + (1 - DECAY) * weights; evaluations and the saved model use it.
_C.MODEL.EMA = CN()
_C.MODEL.EMA.ENABLED = False
_C.MODEL.EMA.DECAY = 0.999

_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
# Stages frozen: 0 = none (training from scratch), 1 = stem, 2 = stem + res2, ...
_C.MODEL.BACKBONE.FREEZE_AT = 0

_C.MODEL.RESNETS = CN()
_C.MODEL.RESNETS.DEPTH = 50
# "BN", "FrozenBN", "GN" or "SyncBN".
_C.MODEL.RESNETS.NORM = "BN"

_C.MODEL.FPN = CN()
_C.MODEL.FPN.OUT_CHANNELS = 256

_C.MODEL.ANCHOR_GENERATOR = CN()
# One list of sizes per FPN level (p2-p6).
_C.MODEL.ANCHOR_GENERATOR.SIZES = [[32], [64], [128], [256], [512]]
_C.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [[0.5, 1.0, 2.0]]

_C.MODEL.RPN = CN()
_C.MODEL.RPN.IOU_THRESHOLDS = [0.3, 0.7]
_C.MODEL.RPN.BATCH_SIZE_PER_IMAGE = 256
_C.MODEL.RPN.POSITIVE_FRACTION = 0.5
_C.MODEL.RPN.PRE_NMS_TOPK_TRAIN = 2000
_C.MODEL.RPN.PRE_NMS_TOPK_TEST = 1000
_C.MODEL.RPN.POST_NMS_TOPK_TRAIN = 1000
_C.MODEL.RPN.POST_NMS_TOPK_TEST = 1000
_C.MODEL.RPN.NMS_THRESH = 0.7

_C.MODEL.ROI_HEADS = CN()
# Number of thing classes (classes with instances). Must match the dataset.
_C.MODEL.ROI_HEADS.NUM_CLASSES = 80
_C.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 512
_C.MODEL.ROI_HEADS.POSITIVE_FRACTION = 0.25
_C.MODEL.ROI_HEADS.IOU_THRESHOLDS = [0.5]
_C.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.05
_C.MODEL.ROI_HEADS.NMS_THRESH_TEST = 0.5

_C.MODEL.ROI_BOX_HEAD = CN()
_C.MODEL.ROI_BOX_HEAD.FC_DIM = 1024
_C.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 7
_C.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = 2

_C.MODEL.ROI_MASK_HEAD = CN()
_C.MODEL.ROI_MASK_HEAD.CONV_DIM = 256
_C.MODEL.ROI_MASK_HEAD.NUM_CONV = 4
_C.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO = 2

_C.MODEL.SEM_SEG_HEAD = CN()
_C.MODEL.SEM_SEG_HEAD.NAME = "SemSegFPNHead"
_C.MODEL.SEM_SEG_HEAD.IN_FEATURES = ["p2", "p3", "p4", "p5"]
# All classes of the dataset, ignore classes included: class ids are the same
# everywhere (label files, model channels, segmentation_image).
_C.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 54
# Value that marks ignore pixels in the model's `sem_seg` input.
_C.MODEL.SEM_SEG_HEAD.IGNORE_VALUE = 255
# segdet: class ids whose pixels take no part in loss or measures and that are
# never predicted. None = use the dataset metadata's ignore ids.
_C.MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS = None
_C.MODEL.SEM_SEG_HEAD.CONVS_DIM = 128
_C.MODEL.SEM_SEG_HEAD.COMMON_STRIDE = 4
# "GN", "BN" or "" (none).
_C.MODEL.SEM_SEG_HEAD.NORM = "GN"
# segdet: finer backbone features the head refines its output with (detectron2's DeepLab key
# names). [] = none, the output at COMMON_STRIDE; ["stem"] = the ResNet stem (stride 2):
# projected to PROJECT_CHANNELS, joined to the upsampled FPN sum by one 3x3 conv, classified at
# stride 2 (for thin structures that 1/4 resolution loses).
_C.MODEL.SEM_SEG_HEAD.PROJECT_FEATURES = []
_C.MODEL.SEM_SEG_HEAD.PROJECT_CHANNELS = [32]
_C.MODEL.SEM_SEG_HEAD.LOSS_WEIGHT = 1.0
# segdet: "cross_entropy", "focal", "dice", "cross_entropy_dice", "ohem_cross_entropy" (the hard
# pixels only), "lovasz" (Lovasz-softmax, a surrogate of 1 - IoU) or "cross_entropy_lovasz".
_C.MODEL.SEM_SEG_HEAD.LOSS_TYPE = "cross_entropy"
# segdet: gamma of the focal loss.
_C.MODEL.SEM_SEG_HEAD.FOCAL_GAMMA = 2.0
# segdet: weight of the Dice term in "cross_entropy_dice" (cross-entropy gets 1 - this).
_C.MODEL.SEM_SEG_HEAD.DICE_WEIGHT = 0.5
# segdet: "ohem_cross_entropy" keeps the pixels whose true-class probability is below
# OHEM_THRESH, and at least the OHEM_MIN_KEPT hardest pixels of each batch (MMSegmentation's).
_C.MODEL.SEM_SEG_HEAD.OHEM_THRESH = 0.7
_C.MODEL.SEM_SEG_HEAD.OHEM_MIN_KEPT = 100000
# segdet: weight of the Lovasz term in "cross_entropy_lovasz" (cross-entropy gets 1 - this).
_C.MODEL.SEM_SEG_HEAD.LOVASZ_WEIGHT = 0.5
# segdet: at inference, divide each class's score by (its training class weight) ** this
# power. Class weights make training favor rare classes, and a weighted cross-entropy learns
# scores proportional to weight x probability: 1.0 undoes that fully (the unweighted
# probabilities), 0.0 keeps the bias towards rare classes, values between trade recall of
# rare classes for fewer false positives. The weights travel in the model file.
_C.MODEL.SEM_SEG_HEAD.CLASS_WEIGHT_CORRECTION = 0.0

# Panoptic fusion of instances and stuff (detectron2's names).
_C.MODEL.PANOPTIC_FPN = CN()
# Weight of the instance (Mask R-CNN) losses relative to the semantic loss.
_C.MODEL.PANOPTIC_FPN.INSTANCE_LOSS_WEIGHT = 1.0
_C.MODEL.PANOPTIC_FPN.COMBINE = CN()
_C.MODEL.PANOPTIC_FPN.COMBINE.ENABLED = True
_C.MODEL.PANOPTIC_FPN.COMBINE.OVERLAP_THRESH = 0.5
_C.MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT = 4096
_C.MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH = 0.5

# ---------------------------------------------------------------------------
# Input and augmentation
# ---------------------------------------------------------------------------
_C.INPUT = CN()
# Resize by shortest edge: a size is drawn from MIN_SIZE_TRAIN ("choice") or
# from the range it spans ("range"). 0 disables resizing.
_C.INPUT.MIN_SIZE_TRAIN = (0,)
_C.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"
_C.INPUT.MAX_SIZE_TRAIN = 0
_C.INPUT.MIN_SIZE_TEST = 0
_C.INPUT.MAX_SIZE_TEST = 0
# Images are given to the model as RGB.
_C.INPUT.FORMAT = "RGB"

_C.INPUT.CROP = CN()
_C.INPUT.CROP.ENABLED = False
# "absolute": SIZE is (height, width) in pixels.
_C.INPUT.CROP.TYPE = "absolute"
_C.INPUT.CROP.SIZE = [256, 256]
# segdet: random crops taken from each image per epoch (DeepDIVA's crops-per-image).
_C.INPUT.CROP.CROPS_PER_IMAGE = 1

# "horizontal", "vertical", "both" or "none".
_C.INPUT.RANDOM_FLIP = "horizontal"
# segdet: random rotation by an angle drawn uniformly from ANGLE_RANGE (degrees).
_C.INPUT.ROTATION = CN()
_C.INPUT.ROTATION.ENABLED = False
_C.INPUT.ROTATION.ANGLE_RANGE = [-10.0, 10.0]
# segdet: photometric jitter, factors drawn uniformly from the range; [1, 1] = off.
_C.INPUT.BRIGHTNESS = [1.0, 1.0]
_C.INPUT.CONTRAST = [1.0, 1.0]
# segdet: mosaic (segdet.data.mosaic): a share PROB of the training samples becomes four samples
# on one canvas, so that the model sees images touching, as tiles of a mosaic or a large image
# show them. segdet's trainer only (not segdet.d2's detectron2 loader).
_C.INPUT.MOSAIC = CN()
_C.INPUT.MOSAIC.ENABLED = False
_C.INPUT.MOSAIC.PROB = 0.5
# segdet: per-class loss weights (the weight_image). None = all 1; a list with one
# weight per class; or "auto" = median-frequency balancing over the training set.
_C.INPUT.CLASS_WEIGHTS = None
# segdet: class ids relabeled as background before training (HALCON's
# "set uninteresting classes as background").
_C.INPUT.MERGE_INTO_BACKGROUND = []
_C.INPUT.BACKGROUND_CLASS_ID = 0

# ---------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------
_C.DATASETS = CN()
_C.DATASETS.TRAIN = ()
_C.DATASETS.TEST = ()
# segdet: datasets defined in the config itself, name -> {FORMAT: ..., args}.
# See segdet/data/formats/__init__.py for the formats and their arguments.
_C.DATASETS.CUSTOM = CN(new_allowed=True)

_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 2
# segdet: skip a bad sample (unreadable file, bad label value) with a warning
# and a count, instead of stopping.
_C.DATALOADER.SKIP_BAD_SAMPLES = False
# segdet: before training (and --eval-only), decode and validate every file of DATASETS.TRAIN
# and DATASETS.TEST, and report all bad samples at once (segdet/data/check.py; cached per
# file). With SKIP_BAD_SAMPLES the bad ones are left out; without it training does not start.
_C.DATALOADER.CHECK_DATASET = True
_C.DATALOADER.FILTER_EMPTY_ANNOTATIONS = False

# ---------------------------------------------------------------------------
# Solver
# ---------------------------------------------------------------------------
_C.SOLVER = CN()
# "SGD" (with momentum) or "ADAMW".
_C.SOLVER.OPTIMIZER = "SGD"
# "WarmupMultiStepLR" or "WarmupCosineLR".
_C.SOLVER.LR_SCHEDULER_NAME = "WarmupMultiStepLR"
_C.SOLVER.MAX_ITER = 40000
_C.SOLVER.BASE_LR = 0.02
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.NESTEROV = False
_C.SOLVER.WEIGHT_DECAY = 0.0001
_C.SOLVER.WEIGHT_DECAY_NORM = 0.0
_C.SOLVER.GAMMA = 0.1
_C.SOLVER.STEPS = (30000,)
_C.SOLVER.WARMUP_FACTOR = 1.0 / 1000
_C.SOLVER.WARMUP_ITERS = 1000
# "linear" or "constant".
_C.SOLVER.WARMUP_METHOD = "linear"
# Cosine schedule ends at BASE_LR * BASE_LR_END / BASE_LR.
_C.SOLVER.BASE_LR_END = 0.0
_C.SOLVER.CHECKPOINT_PERIOD = 5000
# Total images per iteration, over all processes.
_C.SOLVER.IMS_PER_BATCH = 16
_C.SOLVER.CLIP_GRADIENTS = CN()
_C.SOLVER.CLIP_GRADIENTS.ENABLED = False
# "value" or "norm".
_C.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "norm"
_C.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0
_C.SOLVER.CLIP_GRADIENTS.NORM_TYPE = 2.0
# Mixed precision in training (detectron2's key): the forward pass under autocast; the losses in
# float32; weights, optimizer state and checkpoints stay float32.
_C.SOLVER.AMP = CN()
_C.SOLVER.AMP.ENABLED = False
# segdet: "auto" = bfloat16 on a CPU, float16 (with gradient scaling) on a GPU; or "bfloat16" / "float16".
_C.SOLVER.AMP.DTYPE = "auto"
# segdet: the validation metric that picks model_best.pth, e.g. "sem_seg/mean_iou";
# "" = no best checkpoint. MODE is "max" or "min".
_C.SOLVER.BEST_CHECKPOINT_METRIC = ""
_C.SOLVER.BEST_CHECKPOINT_MODE = "max"

# ---------------------------------------------------------------------------
# Test
# ---------------------------------------------------------------------------
_C.TEST = CN()
# Evaluate every EVAL_PERIOD iterations during training; 0 = only at the end.
_C.TEST.EVAL_PERIOD = 0
_C.TEST.DETECTIONS_PER_IMAGE = 100
# segdet: sliding-window inference for large images. TILE_SIZE 0 = whole image.
_C.TEST.TILE_SIZE = 0
_C.TEST.TILE_OVERLAP = 0.5
# "max" (keep the maximum activation, as DeepDIVA) or "mean".
_C.TEST.TILE_MERGE = "max"
# segdet: what runs the semantic logits step at inference: "torch", or "onnxruntime" (the step
# exported to ONNX in memory and run by ONNX Runtime on the CPU; semantic models only).
_C.TEST.ENGINE = "torch"
# segdet: also report per-image measures (which images are worst).
_C.TEST.PER_IMAGE_METRICS = False
# segdet: also report boundary IoU, with this band width in pixels; 0 = off.
_C.TEST.BOUNDARY_IOU_WIDTH = 0
# segdet: mixed precision at inference: the network under autocast ("auto" = bfloat16 on a CPU,
# float16 on a GPU); the scores, the choice of the class and the detections in float32.
_C.TEST.AMP = CN()
_C.TEST.AMP.ENABLED = False
_C.TEST.AMP.DTYPE = "auto"
# Test-time augmentation of the semantic path (detectron2's keys): class scores averaged over
# every (scale, flip) variant; instances from the un-augmented pass. Each MIN_SIZE is the short
# side in pixels the whole image is resized to (long side at most MAX_SIZE), from its original
# size, whatever INPUT.MIN_SIZE_TEST is; tiles are scaled by their image's factor. detectron2's
# (400, ..., 1200) is for COCO's 800 px test size; segdet's brackets images of a 512 px short
# side by 0.75x, 1x, 1.25x: set it around your own test size. Applies to every evaluation
# (training's too), Predictor and tools/predict.py (--tta); exports leave it out.
_C.TEST.AUG = CN()
_C.TEST.AUG.ENABLED = False
_C.TEST.AUG.MIN_SIZES = (384, 512, 640)
_C.TEST.AUG.MAX_SIZE = 4000
_C.TEST.AUG.FLIP = True

# ---------------------------------------------------------------------------
# Misc
# ---------------------------------------------------------------------------
_C.OUTPUT_DIR = "./output"
# Negative = a fresh random seed each run (logged).
_C.SEED = -1
_C.CUDNN_BENCHMARK = False
# segdet: make every operation deterministic (for reproducible resume).
_C.DETERMINISTIC = False
