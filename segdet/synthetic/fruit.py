"""Synthetic fruit scenes: images of oranges, lemons and apples on a table (after HALCON's
fruit example), with their class labels and instance masks. What the demo dataset is drawn
from; deterministic for a given generator state. Images are float32 RGB in [0, 1] until the
end of `render_fruit_scene`.
"""
from __future__ import annotations

import colorsys

import cv2
import numpy as np

# Class ids of the drawn labels (the demo dataset's classes).
BACKGROUND, ORANGE, LEMON, APPLE, BORDER = range(5)
FRUITS = (ORANGE, LEMON, APPLE)



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


def render_fruit_scene(rng: np.random.Generator, height: int, width: int):
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
