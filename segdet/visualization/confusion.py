"""A pixel confusion matrix as a heat-map picture (HALCON's dev_display_segmentation_evaluation)."""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np
# The Agg canvas directly, not pyplot: no display is needed, and the global backend
# of a user's session (e.g. a notebook) is left alone.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from segdet.utils.files import atomic_write

# Above this many classes the cells are too small to hold numbers.
_MAX_ANNOTATED = 30


def plot_confusion_matrix(
    conf: np.ndarray,
    class_names: Sequence[str],
    path: str,
    ignore_class_ids: Iterable[int] = (),
    title: Optional[str] = None,
) -> str:
    """Save a row-normalized heat map of a confusion matrix, with the counts in the cells.

    Rows are ground-truth classes and columns predicted classes; a cell's color is its
    share of the row (the fraction of that class's pixels predicted as the column's
    class), its text the pixel count and that share. Ignore classes are left out
    (their rows are empty), unless some pixels were predicted as one.

    Args:
        conf: NxN pixel counts.
        class_names: the N class names.
        path: PNG file to write (folders are created; written atomically).
        ignore_class_ids: classes whose rows are dropped.
        title: picture title.
    Returns:
        `path`.
    """
    conf = np.asarray(conf, dtype=np.int64)
    ignore = set(int(i) for i in ignore_class_ids)
    rows = [i for i in range(len(class_names)) if i not in ignore]
    cols = [i for i in range(len(class_names)) if i not in ignore or conf[:, i].any()]
    counts = conf[np.ix_(rows, cols)]
    row_sums = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_sums, out=np.zeros(counts.shape, dtype=np.float64), where=row_sums > 0)

    size = max(4.0, 0.6 * len(cols) + 2.5)
    fig = Figure(figsize=(size + 1.0, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the ground-truth class")
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels([class_names[i] for i in cols], rotation=45, ha="right")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([class_names[i] for i in rows])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("ground-truth class")
    if title:
        ax.set_title(title)
    if len(cols) <= _MAX_ANNOTATED:
        for r in range(len(rows)):
            for c in range(len(cols)):
                color = "white" if shares[r, c] > 0.5 else "black"
                ax.text(c, r, f"{counts[r, c]}\n{100 * shares[r, c]:.1f}%", ha="center", va="center",
                        fontsize=7, color=color)
    fig.tight_layout()
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
