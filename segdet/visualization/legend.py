"""Legends: which classes a picture shows, as a box over it or a picture beside it."""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

import cv2
import numpy as np

from segdet.structures.metadata import Metadata
from segdet.visualization.primitives import (
    NOT_A_CLASS_COLOR,
    PANEL_BG,
    check_image,
    Color,
    fill_pattern,
    index_map,
    put_text,
    text_scale,
    text_size,
)


def legend_entries(
    metadata: Metadata,
    class_ids: Iterable[int],
    other_values: Iterable[int] = (),
) -> list[tuple[str, Color, str]]:
    """Legend entries (name, color, style) for some class ids, in id order.

    Ignore classes are named "<class> (ignored)" with a hatched swatch; `other_values`
    (values that are not classes) give one "not a class: ..." entry with a checker swatch.
    """
    entries: list[tuple[str, Color, str]] = []
    ignore = set(metadata.ignore_class_ids)
    for c in sorted(set(int(i) for i in class_ids)):
        if not 0 <= c < metadata.num_classes:
            continue
        if c in ignore:
            entries.append((f"{metadata.class_names[c]} (ignored)", metadata.class_colors[c], "hatched"))
        else:
            entries.append((metadata.class_names[c], metadata.class_colors[c], "solid"))
    others = sorted(set(int(v) for v in other_values))
    if others:
        shown = ", ".join(str(v) for v in others[:5]) + (", ..." if len(others) > 5 else "")
        entries.append((f"not a class: {shown}", NOT_A_CLASS_COLOR, "checker"))
    return entries


def present_legend_entries(seg: Optional[np.ndarray], metadata: Metadata,
                     extra_class_ids: Iterable[int] = ()) -> list[tuple[str, Color, str]]:
    """Legend entries of the classes (and non-class values) in a map, plus some class ids."""
    ids = set(int(c) for c in extra_class_ids)
    others: list[int] = []
    if seg is not None and seg.size:
        n = metadata.num_classes
        counts = np.bincount(index_map(seg, n).ravel(), minlength=256)
        ids |= set(int(c) for c in np.flatnonzero(counts[:n]))
        if counts[n:].any():
            seg64 = seg.astype(np.int64, copy=False)
            others = [int(v) for v in np.unique(seg64[(seg64 < 0) | (seg64 >= n)])]
    return legend_entries(metadata, ids, others)


class _LegendLayout:
    """Sizes of a legend box for some entries at a font scale."""

    def __init__(self, entries: Sequence[tuple], scale: float):
        self.scale = scale
        self.texts = [str(e[0]) for e in entries]
        sizes = [text_size(t, scale) for t in self.texts]
        self.text_h = max(s[1] for s in sizes)
        baseline = max(s[2] for s in sizes)
        self.pad = max(3, self.text_h // 3)
        self.row_h = self.text_h + baseline + self.pad
        self.swatch = self.text_h + baseline
        self.width = self.pad + self.swatch + self.pad + max(s[0] for s in sizes) + self.pad
        self.height = self.pad + self.row_h * len(entries)


def _draw_legend_box(out: np.ndarray, entries: Sequence[tuple], layout: _LegendLayout, x0: int, y0: int) -> None:
    h, w = out.shape[:2]
    cell = max(2, layout.swatch // 4)
    for k, entry in enumerate(entries):
        color = tuple(int(v) for v in entry[1])
        style = entry[2] if len(entry) > 2 else "solid"
        top = y0 + layout.pad + k * layout.row_h
        if top >= h:
            break
        sx0, sy0 = x0 + layout.pad, top
        sx1, sy1 = min(w, sx0 + layout.swatch), min(h, sy0 + layout.swatch)
        if sx1 > sx0 and sy1 > sy0:
            fill_pattern(out[sy0:sy1, sx0:sx1], color, style, cell)
            cv2.rectangle(out, (sx0, sy0), (sx1 - 1, sy1 - 1), (220, 220, 220), 1)
        put_text(out, layout.texts[k], (sx0 + layout.swatch + layout.pad, top + layout.text_h), layout.scale)


def draw_legend(image: np.ndarray, entries: Sequence[tuple]) -> np.ndarray:
    """Draw a legend box in the top-right corner of an image.

    Args:
        image: HxWx3 RGB uint8 (not modified).
        entries: (name, (r, g, b)) or (name, (r, g, b), style) with style "solid",
            "hatched" (ignore class) or "checker" (not a class); see `legend_entries`.
    Returns:
        A copy of the image with the legend.
    """
    out = check_image(image).copy()
    if not entries:
        return out
    h, w = out.shape[:2]
    layout = _LegendLayout(entries, text_scale(h, w))
    x0 = max(0, w - layout.width - layout.pad)
    y0 = min(layout.pad, max(0, h - layout.height))
    # A translucent dark panel keeps the image visible behind the legend.
    region = out[y0:min(h, y0 + layout.height), x0:min(w, x0 + layout.width)]
    region[:] = (region.astype(np.float32) * 0.35).astype(np.uint8)
    _draw_legend_box(out, entries, layout, x0, y0)
    return out


def legend_image(entries: Sequence[tuple], height: int) -> np.ndarray:
    """A legend on its own: a dark picture `height` pixels high, in as many columns as the
    entries need, to put next to an image instead of over it (see `side_by_side`).

    Args:
        entries: as for `draw_legend`.
        height: picture height in pixels; the font is sized as for an image of that height.
    """
    entries = list(entries) or [("(no class)", PANEL_BG)]
    layout = _LegendLayout(entries, text_scale(height, height))
    per_column = max(1, (height - layout.pad) // layout.row_h)
    columns = [entries[i:i + per_column] for i in range(0, len(entries), per_column)]
    widths = [_LegendLayout(col, layout.scale).width for col in columns]
    out = np.empty((max(height, layout.height if len(columns) == 1 else 0), sum(widths) + layout.pad, 3),
                   dtype=np.uint8)
    out[:] = PANEL_BG
    x = 0
    for col, width in zip(columns, widths):
        _draw_legend_box(out, col, _LegendLayout(col, layout.scale), x, 0)
        x += width
    return out


