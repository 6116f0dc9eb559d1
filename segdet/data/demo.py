"""The built-in demo dataset: synthetic fruit on a table (after HALCON's fruit example).

Classes: 0 background, 1 orange, 2 lemon, 3 apple (things, with COCO instance
masks), 4 border (an ignore class: a band of about 2 px along every visible
fruit outline, as in HALCON's segmentation_image figure).

`generate_demo_dataset` draws it deterministically (same seed -> the same
bytes) in a few seconds; `register_demo_datasets` registers
`demo_fruit_{train,val,test}` and generates the files on first use.
"""
from __future__ import annotations

import colorsys
import json
import logging
import os
import re
import shutil
from typing import Optional

import cv2
import numpy as np

from segdet.data.catalog import register_dataset
from segdet.structures.masks import annotation_area, masks_to_rles, rle_box
from segdet.structures.metadata import Metadata
from segdet.errors import DataError
from segdet.utils.files import atomic_write_bytes, atomic_write_text, write_json
from segdet.utils.progress import Progress

logger = logging.getLogger(__name__)

# Bump when the drawing or the file layout changes: an old generated copy is then redone.
DEMO_VERSION = 1
GENERATOR = "segdet-demo-fruit"
SPLITS = ("train", "val", "test")
CLASS_NAMES = ("background", "orange", "lemon", "apple", "border")
CLASS_COLORS = ((40, 40, 40), (255, 140, 0), (250, 230, 50), (200, 30, 40), (255, 255, 255))
BACKGROUND, ORANGE, LEMON, APPLE, BORDER = range(5)
FRUITS = (ORANGE, LEMON, APPLE)
MIN_INSTANCE_AREA = 20  # px; smaller visible remnants are left to the semantic labels only
README_TITLE = "segdet demo dataset: synthetic fruit on a table"


# 84 train, 18 val, 18 test images: enough for a model to generalize in a CPU-sized run.
DEFAULT_NUM_IMAGES = 120


def demo_metadata() -> Metadata:
    """Classes of the demo dataset (gray label PNGs, pixel value = class id)."""
    return Metadata(
        class_names=list(CLASS_NAMES),
        class_colors=[tuple(c) for c in CLASS_COLORS],
        ignore_class_ids=[BORDER],
        thing_class_ids=list(FRUITS),
        label_format="gray",
    )


def default_demo_root() -> str:
    """`$SEGDET_DATASETS/demo_fruit`, `./datasets/demo_fruit` when the variable is unset."""
    return os.path.join(os.environ.get("SEGDET_DATASETS", "datasets"), "demo_fruit")


# ---------------------------------------------------------------------------
# Drawing. Images are float32 RGB in [0, 1] until they are written.
# ---------------------------------------------------------------------------

def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a few random values, smoothly upsampled."""
    grid = rng.uniform(-1.0, 1.0, size=(cells, cells)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.asarray(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def _table(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A table top: wood grain or a plain/cloth surface, unevenly lit."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    kind = rng.choice(["wood", "plain", "cloth"], p=[0.45, 0.3, 0.25])
    if kind == "wood":
        base = _hsv(rng.uniform(0.06, 0.10), rng.uniform(0.30, 0.55), rng.uniform(0.45, 0.78))
        angle = rng.uniform(0, np.pi)
        t = xx * np.cos(angle) + yy * np.sin(angle)
        warp = 9.0 * _smooth_noise(rng, height, width, 3) + 2.0 * _smooth_noise(rng, height, width, 10)
        period = rng.uniform(7.0, 16.0)
        grain = 0.5 + 0.5 * np.sin(2 * np.pi * (t + warp) / period)
        grain = grain ** 3  # thin dark rings on lighter wood
        image = base * (1.0 - 0.22 * grain[..., None])
    elif kind == "plain":
        base = _hsv(rng.uniform(0.0, 1.0), rng.uniform(0.0, 0.18), rng.uniform(0.35, 0.85))
        image = np.broadcast_to(base, (height, width, 3)).copy()
    else:
        # woven cloth: a faint crossing pattern
        base = _hsv(rng.uniform(0.0, 1.0), rng.uniform(0.05, 0.35), rng.uniform(0.45, 0.9))
        period = rng.uniform(3.0, 6.0)
        weave = np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period)
        image = base * (1.0 + 0.06 * weave[..., None])
    light = 1.0 + 0.15 * _smooth_noise(rng, height, width, 3)
    grad = rng.uniform(-0.15, 0.15, size=2)
    light += grad[0] * (xx / width - 0.5) + grad[1] * (yy / height - 0.5)
    speckle = rng.normal(0.0, 0.025, size=(height, width)).astype(np.float32)
    return (image * (light + speckle)[..., None]).astype(np.float32)


class _Fruit:
    """One fruit's shape and look; `render` draws it into a patch."""

    def __init__(self, rng: np.random.Generator, kind: int, cx: float, cy: float, radius: float):
        self.kind, self.cx, self.cy = kind, cx, cy
        self.angle = rng.uniform(0, 2 * np.pi)
        self.harmonics = rng.uniform(-0.02, 0.02, size=2), rng.uniform(0, 2 * np.pi, size=2)
        if kind == ORANGE:
            self.a = radius * rng.uniform(1.0, 1.06)
            self.b = radius * rng.uniform(0.97, 1.0)
            self.color = _hsv(rng.uniform(0.055, 0.095), rng.uniform(0.82, 1.0), rng.uniform(0.85, 1.0))
        elif kind == LEMON:
            self.a = radius * rng.uniform(1.22, 1.45)
            self.b = radius * rng.uniform(0.82, 0.95)
            self.tips = rng.uniform(0.08, 0.16, size=2)
            self.color = _hsv(rng.uniform(0.13, 0.16), rng.uniform(0.7, 0.95), rng.uniform(0.93, 1.0))
        else:
            self.a = radius * rng.uniform(1.0, 1.08)
            self.b = radius * rng.uniform(0.93, 1.0)
            self.dimple = rng.uniform(0.05, 0.10)
            if rng.random() < 0.65:  # red apple with yellow streaks
                self.color = _hsv(rng.uniform(-0.025, 0.02), rng.uniform(0.7, 0.92), rng.uniform(0.5, 0.8))
                self.streak_color = _hsv(rng.uniform(0.06, 0.1), rng.uniform(0.6, 0.85), rng.uniform(0.75, 0.95))
            else:  # green apple with a yellow-red blush
                self.color = _hsv(rng.uniform(0.19, 0.27), rng.uniform(0.55, 0.82), rng.uniform(0.55, 0.85))
                self.streak_color = _hsv(rng.uniform(0.08, 0.14), rng.uniform(0.5, 0.8), rng.uniform(0.7, 0.9))
            # streak strength around the stem: a random periodic function of the angle (no seam)
            self.streak_amps = rng.normal(0.0, 1.0, size=10) / np.arange(1, 11) ** 0.7
            self.streak_phases = rng.uniform(0, 2 * np.pi, size=10)
            self.stem_bend = rng.uniform(-0.6, 0.6)
        self.peel = rng.uniform(0.04, 0.08)

    @property
    def extent(self) -> float:
        """Radius of a circle that holds the whole fruit."""
        return 1.2 * max(self.a, self.b) + 2.0

    def _boundary(self, theta: np.ndarray) -> np.ndarray:
        """Boundary radius (1 = the ellipse a, b) at angle theta of the normalized frame."""
        amp, phase = self.harmonics
        rho = 1.0 + amp[0] * np.cos(2 * theta + phase[0]) + amp[1] * np.cos(3 * theta + phase[1])
        if self.kind == LEMON:
            # pointed ends: narrow bumps on the long axis
            d0 = np.angle(np.exp(1j * theta))
            d1 = np.angle(np.exp(1j * (theta - np.pi)))
            rho = rho + self.tips[0] * np.exp(-(d0 / 0.2) ** 2) + self.tips[1] * np.exp(-(d1 / 0.2) ** 2)
        elif self.kind == APPLE:
            # stem dimple at the top (theta = -pi/2), slightly broader shoulders
            d = np.angle(np.exp(1j * (theta + np.pi / 2)))
            rho = rho - self.dimple * np.exp(-(d / 0.3) ** 2) - 0.03 * np.sin(theta)
        return rho

    def render(self, rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray, light: np.ndarray):
        """Color (h x w x 3), coverage alpha and hard mask of the fruit on a pixel grid."""
        dx, dy = xx - self.cx, yy - self.cy
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        u = dx * cos + dy * sin
        v = -dx * sin + dy * cos
        un, vn = u / self.a, v / self.b
        theta = np.arctan2(vn, un)
        rho = self._boundary(theta)
        s = np.hypot(un, vn) / rho  # 1 on the outline
        mask = s <= 1.0
        # distance to the outline in px (approximately), for anti-aliased edges
        alpha = np.clip((1.0 - s) * rho * min(self.a, self.b) + 0.5, 0.0, 1.0)

        # a sphere-like normal from the normalized radius
        sc = np.clip(s, 0.0, 1.0)
        dist = np.hypot(dx, dy) + 1e-6
        nx, ny = sc * dx / dist, sc * dy / dist
        nz = np.sqrt(1.0 - sc ** 2)
        lambert = np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0.0, 1.0)
        half = light + np.array([0.0, 0.0, 1.0])
        half = half / np.linalg.norm(half)
        spec = np.clip(nx * half[0] + ny * half[1] + nz * half[2], 0.0, 1.0)

        h, w = xx.shape
        noise = cv2.GaussianBlur(rng.normal(0.0, 1.0, size=(h, w)).astype(np.float32), (0, 0), 0.8)
        pores = (rng.random((h, w)) < 0.06).astype(np.float32)
        color = np.broadcast_to(self.color, (h, w, 3)).astype(np.float32)
        texture = 1.0 + self.peel * noise
        if self.kind in (ORANGE, LEMON):
            texture -= 0.07 * pores  # dimpled peel
            shininess, gloss = (18.0, 0.35) if self.kind == ORANGE else (24.0, 0.3)
        else:
            # streaks radiating from the stem
            top_x = self.cx + sin * self.b * 0.8
            top_y = self.cy - cos * self.b * 0.8
            phi = np.arctan2(yy - top_y, xx - top_x)
            k = np.arange(1, 11, dtype=np.float32)
            streak = np.cos(phi[..., None] * k + self.streak_phases) @ self.streak_amps
            mix = np.clip(0.35 + 0.3 * streak, 0.0, 1.0) * (0.4 + 0.6 * sc)
            color = color * (1 - mix[..., None]) + self.streak_color * mix[..., None]
            texture += 0.08 * pores  # light lenticels
            shininess, gloss = 40.0, 0.45
            # dark dimple and a brown stem
            d_top = np.hypot(xx - top_x, yy - top_y)
            texture *= 1.0 - 0.35 * np.exp(-(d_top / (0.22 * self.b)) ** 2)
            stem_dir = np.array([sin, -cos]) * np.cos(self.stem_bend) + np.array([cos, sin]) * np.sin(self.stem_bend)
            length = 0.35 * self.b
            t = np.clip(((xx - top_x) * -stem_dir[0] + (yy - top_y) * -stem_dir[1]) / length, 0.0, 1.0)
            px, py = top_x - t * length * stem_dir[0], top_y - t * length * stem_dir[1]
            stem = np.clip(1.6 - np.hypot(xx - px, yy - py), 0.0, 1.0)
            color = color * (1 - stem[..., None]) + np.array([0.30, 0.20, 0.10], np.float32) * stem[..., None]
        shade = 0.4 + 0.72 * lambert - 0.12 * sc ** 6  # darker rim
        rgb = color * (shade * texture)[..., None] + (gloss * (1 + 0.6 * noise) * spec ** shininess)[..., None]
        return rgb.astype(np.float32), alpha.astype(np.float32), mask


def _place_fruits(rng: np.random.Generator, height: int, width: int) -> list[_Fruit]:
    side = min(height, width)
    fruits: list[_Fruit] = []
    for _ in range(int(rng.integers(2, 8))):
        kind = int(rng.choice(FRUITS))
        radius = side * rng.uniform(0.08, 0.15)
        # prefer spots that do not hide most of an earlier fruit; touching and overlap still happen
        for _attempt in range(8):
            cx = rng.uniform(0.4 * radius, width - 0.4 * radius)
            cy = rng.uniform(0.4 * radius, height - 0.4 * radius)
            if all(np.hypot(cx - f.cx, cy - f.cy) > 0.75 * (radius + min(f.a, f.b)) for f in fruits):
                break
        fruits.append(_Fruit(rng, kind, cx, cy, radius))
    return fruits


def _border_band(instance_map: np.ndarray) -> np.ndarray:
    """Pixels with an 8-neighbour of another instance (or background): a ~2 px band along outlines."""
    padded = np.pad(instance_map, 1, mode="edge")
    h, w = instance_map.shape
    band = np.zeros((h, w), dtype=bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy != 1 or dx != 1:
                band |= padded[dy:dy + h, dx:dx + w] != instance_map
    return band


def render_demo_image(rng: np.random.Generator, height: int, width: int):
    """Draw one image.

    Returns:
        (image HxWx3 uint8 RGB, segmentation_image HxW uint8 class ids,
        instance map HxW int32 (0 = table, k = k-th fruit), fruit class of each instance).
    """
    image = _table(rng, height, width)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    light = np.array([rng.uniform(-0.7, -0.2), rng.uniform(-0.8, -0.3), 0.7])
    light /= np.linalg.norm(light)
    labels = np.zeros((height, width), np.uint8)
    instances = np.zeros((height, width), np.int32)
    fruits = _place_fruits(rng, height, width)
    for k, fruit in enumerate(fruits, start=1):
        r = fruit.extent
        x0, x1 = max(int(fruit.cx - r), 0), min(int(fruit.cx + r) + 2, width)
        y0, y1 = max(int(fruit.cy - r), 0), min(int(fruit.cy + r) + 2, height)
        rgb, alpha, mask = fruit.render(rng, xx[y0:y1, x0:x1], yy[y0:y1, x0:x1], light)
        # soft shadow on what lies below, away from the light
        shadow = np.zeros((height, width), np.float32)
        off = -light[:2] / max(light[2], 0.3) * 0.25 * min(fruit.a, fruit.b)
        sx0, sy0 = x0 + int(round(off[0])), y0 + int(round(off[1]))
        cx0, cy0 = max(sx0, 0), max(sy0, 0)
        cx1, cy1 = min(sx0 + (x1 - x0), width), min(sy0 + (y1 - y0), height)
        if cx1 > cx0 and cy1 > cy0:
            shadow[cy0:cy1, cx0:cx1] = alpha[cy0 - sy0:cy1 - sy0, cx0 - sx0:cx1 - sx0]
            shadow = cv2.GaussianBlur(shadow, (0, 0), 0.3 * min(fruit.a, fruit.b))
            image *= (1.0 - 0.45 * shadow)[..., None]
        patch = image[y0:y1, x0:x1]
        patch[:] = patch * (1.0 - alpha[..., None]) + rgb * alpha[..., None]
        labels[y0:y1, x0:x1][mask] = fruit.kind
        instances[y0:y1, x0:x1][mask] = k
    # camera: white balance, mild blur, sensor noise
    image *= rng.uniform(0.92, 1.08, size=3).astype(np.float32)
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 0.9))
    image += rng.normal(0.0, rng.uniform(0.008, 0.02), size=image.shape).astype(np.float32)
    image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    labels[_border_band(instances)] = BORDER
    return image, labels, instances, [f.kind for f in fruits]


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------

def _encode(ext: str, array: np.ndarray, params: Optional[list[int]] = None) -> bytes:
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, array, params or [])
    if not ok:
        raise DataError(f"cannot encode a {ext} image")
    return buf.tobytes()


def _split_counts(num_images: int, splits: tuple[float, float, float]) -> list[int]:
    counts = [int(round(num_images * f)) for f in splits[:-1]]
    counts.append(num_images - sum(counts))
    # every split asked for gets at least one image when there are enough
    for i, f in enumerate(splits):
        if f > 0 and counts[i] <= 0 and num_images >= sum(1 for g in splits if g > 0):
            donor = int(np.argmax(counts))
            counts[donor] -= 1
            counts[i] += 1
    return counts


def _classes_file() -> dict:
    classes = []
    for i, (name, color) in enumerate(zip(CLASS_NAMES, CLASS_COLORS)):
        entry = {"id": i, "name": name, "color": list(color)}
        if i in FRUITS:
            entry["thing"] = True
        if i == BORDER:
            entry["ignore"] = True
        classes.append(entry)
    return {"name": "demo_fruit", "label_format": "gray", "classes": classes}


def _readme(num_images: int, seed: int, image_size: tuple[int, int]) -> str:
    return f"""{README_TITLE}

Generated by segdet.data.demo.generate_demo_dataset (version {DEMO_VERSION}),
{num_images} images of {image_size[0]}x{image_size[1]} px, seed {seed}. A synthetic
version of the fruit example of HALCON's semantic segmentation chapter.

images/<split>/<stem>.jpg        the images (RGB JPEG, quality 95)
segmentation/<split>/<stem>.png  segmentation_images: gray PNG, pixel value = class id
annotations/instances_<split>.json  COCO instances: the visible part of each fruit as RLE
classes.json                     classes (segdet classes file)
split.json                       image ids (stems) of each split
.complete                        written last; missing = generation was interrupted

Classes: 0 background, 1 orange, 2 lemon, 3 apple (things), 4 border (ignore:
a band of about 2 px along every visible fruit outline; no loss, no measure).
Fruits of under {MIN_INSTANCE_AREA} visible pixels have no instance annotation but
keep their class in the segmentation_image.
"""


def read_complete_marker(output_dir: str) -> Optional[dict]:
    """Contents of `output_dir/.complete`, or None when it is missing or unreadable."""
    try:
        with open(os.path.join(output_dir, ".complete")) as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def generate_demo_dataset(
    output_dir: str,
    num_images: int = DEFAULT_NUM_IMAGES,
    seed: int = 0,
    image_size: tuple[int, int] = (192, 192),
    splits: tuple[float, float, float] = (0.7, 0.15, 0.15),
) -> dict:
    """Draw the demo dataset into `output_dir` (same arguments -> byte-identical files).

    Args:
        output_dir: folder to write (created; our earlier files in it are replaced).
        num_images: images in all splits together.
        seed: random seed; image i depends only on (seed, i).
        image_size: (height, width).
        splits: fractions of train, val and test.

    Returns:
        Summary: output_dir, version, seed, num_images, images per split,
        instances per split and instances per class name.
    """
    if int(num_images) < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}")
    if len(splits) != 3 or min(splits) < 0 or abs(sum(splits) - 1.0) > 1e-6:
        raise ValueError(f"splits must be three non-negative fractions summing to 1, got {splits}")
    height, width = int(image_size[0]), int(image_size[1])
    if min(height, width) < 32:
        raise ValueError(f"image_size must be at least 32x32, got {image_size}")
    num_images = int(num_images)
    os.makedirs(output_dir, exist_ok=True)
    marker = os.path.join(output_dir, ".complete")
    if os.path.exists(marker):
        os.remove(marker)
    atomic_write_text(_readme(num_images, seed, (height, width)), os.path.join(output_dir, "README.txt"))
    write_json(_classes_file(), os.path.join(output_dir, "classes.json"), indent=1)

    split_rng = np.random.default_rng([seed, 2**31])
    order = split_rng.permutation(num_images)
    counts = _split_counts(num_images, splits)
    split_of = np.empty(num_images, dtype=np.int64)
    start = 0
    for s, n in enumerate(counts):
        split_of[order[start:start + n]] = s
        start += n

    stem_re = re.compile(r"^fruit_\d+\.(jpg|png)$")
    for sub in ("images", "segmentation"):
        for split in SPLITS:
            folder = os.path.join(output_dir, sub, split)
            if os.path.isdir(folder):  # drop our files of an earlier, larger generation
                for name in os.listdir(folder):
                    if stem_re.match(name):
                        os.remove(os.path.join(folder, name))

    categories = [{"id": i + 1, "name": CLASS_NAMES[c], "supercategory": "fruit"} for i, c in enumerate(FRUITS)]
    coco_cat = {c: i + 1 for i, c in enumerate(FRUITS)}
    cocos = {split: {"info": {"description": README_TITLE, "version": str(DEMO_VERSION)},
                     "images": [], "annotations": [], "categories": categories} for split in SPLITS}
    per_class = {CLASS_NAMES[c]: 0 for c in FRUITS}
    per_split_instances = {split: 0 for split in SPLITS}
    split_ids: dict[str, list[str]] = {split: [] for split in SPLITS}
    next_ann_id = 1
    progress = Progress(num_images, "Generating the demo dataset", logger=logger)
    for i in range(num_images):
        split = SPLITS[split_of[i]]
        stem = f"fruit_{i:04d}"
        image, labels, instances, kinds = render_demo_image(np.random.default_rng([seed, i]), height, width)
        atomic_write_bytes(_encode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95]),
                           os.path.join(output_dir, "images", split, stem + ".jpg"))
        atomic_write_bytes(_encode(".png", labels), os.path.join(output_dir, "segmentation", split, stem + ".png"))
        coco = cocos[split]
        coco["images"].append({"id": i + 1, "file_name": stem + ".jpg", "height": height, "width": width})
        split_ids[split].append(stem)
        for k, kind in enumerate(kinds, start=1):
            visible = instances == k
            if int(visible.sum()) < MIN_INSTANCE_AREA:
                continue
            rle = masks_to_rles(visible[None])[0]
            coco["annotations"].append({
                "id": next_ann_id,
                "image_id": i + 1,
                "category_id": coco_cat[kind],
                "segmentation": rle,
                "area": annotation_area(rle),
                "bbox": rle_box(rle),
                "iscrowd": 0,
            })
            next_ann_id += 1
            per_class[CLASS_NAMES[kind]] += 1
            per_split_instances[split] += 1
        progress.step()

    for split in SPLITS:
        write_json(cocos[split], os.path.join(output_dir, "annotations", f"instances_{split}.json"), indent=1)
    # the layout of segdet.data.split's split files
    write_json({**split_ids, "seed": int(seed)}, os.path.join(output_dir, "split.json"), indent=1)
    summary = {
        "output_dir": os.path.abspath(output_dir),
        "version": DEMO_VERSION,
        "seed": int(seed),
        "num_images": num_images,
        "image_size": [height, width],
        "images_per_split": {split: len(split_ids[split]) for split in SPLITS},
        "instances_per_split": per_split_instances,
        "instances_per_class": per_class,
    }
    write_json({"generator": GENERATOR, "version": DEMO_VERSION, "num_images": num_images,
                "seed": int(seed), "image_size": [height, width]}, marker, indent=1)
    return summary


# ---------------------------------------------------------------------------
# Registration and generation on first use
# ---------------------------------------------------------------------------

def _is_complete(root: str, num_images: Optional[int] = None, seed: Optional[int] = None) -> bool:
    """A finished copy of this generator version (and, when given, of this size and seed)."""
    marker = read_complete_marker(root)
    if not marker or marker.get("generator") != GENERATOR or marker.get("version") != DEMO_VERSION:
        return False
    return (num_images is None or marker.get("num_images") == num_images) and (seed is None or marker.get("seed") == seed)


def _looks_like_ours(root: str) -> bool:
    try:
        with open(os.path.join(root, "README.txt")) as f:
            return f.readline().strip() == README_TITLE
    except OSError:
        return False


def ensure_demo_dataset(root: str, num_images: int = DEFAULT_NUM_IMAGES, seed: int = 0) -> str:
    """Generate the demo dataset at `root` unless a complete copy of this version is there.

    Safe when several processes (distributed ranks) call it at once: each draws into
    `root.tmp-<pid>` and renames it into place; whoever comes second discards its copy.

    Returns:
        `root` (normalized).
    """
    root = os.path.normpath(root)  # a trailing slash would put the temp folder inside root
    if _is_complete(root, num_images, seed):
        return root
    if os.path.exists(root) and not (_looks_like_ours(root) or (os.path.isdir(root) and not os.listdir(root))):
        raise DataError(
            f"{root} exists but is not a complete segdet demo dataset (no .complete marker); "
            "remove it, or point SEGDET_DATASETS (or the root argument) somewhere else"
        )
    logger.info("demo dataset not found (or outdated) at %s: generating %d images there", root, num_images)
    tmp = f"{root}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        generate_demo_dataset(tmp, num_images=num_images, seed=seed)
        if _is_complete(root, num_images, seed):  # another process finished first
            return root
        if os.path.exists(root):  # an interrupted or outdated copy: move it aside, then delete it
            stale = f"{root}.stale-{os.getpid()}"
            try:
                os.replace(root, stale)
            except OSError:
                pass
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp, root)
        except OSError:
            # the final folder appeared meanwhile (rename onto a non-empty folder fails)
            if not _is_complete(root, num_images, seed):
                raise DataError(f"cannot move the generated demo dataset from {tmp} to {root}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("demo dataset ready at %s", root)
    return root


def register_demo_datasets(root: Optional[str] = None, num_images: int = DEFAULT_NUM_IMAGES, seed: int = 0) -> list[str]:
    """Register `demo_fruit_train`, `demo_fruit_val`, `demo_fruit_test`.

    Nothing is generated now: loading one of them generates the files at `root` first
    when they are missing (or from another generator version).

    Args:
        root: dataset folder; default `default_demo_root()`, resolved now.
        num_images, seed: what to generate when the files are missing.

    Returns:
        The registered names.
    """
    # imported here so that segdet.data may import this module without a cycle through formats
    from segdet.data.formats.coco_semantic import load_coco_semantic  # noqa: PLC0415

    root = os.path.abspath(root if root is not None else default_demo_root())
    names = []
    for split in SPLITS:
        name = f"demo_fruit_{split}"
        metadata = demo_metadata()
        metadata.json_file = os.path.join(root, "annotations", f"instances_{split}.json")

        def load(split: str = split, metadata: Metadata = metadata) -> list[dict]:
            ensure_demo_dataset(root, num_images=num_images, seed=seed)
            return load_coco_semantic(
                metadata.json_file,
                os.path.join(root, "images", split),
                os.path.join(root, "segmentation", split),
                metadata,
            )

        register_dataset(name, load, metadata)
        names.append(name)
    return names
