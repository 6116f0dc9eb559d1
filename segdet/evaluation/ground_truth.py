"""The semantic ground truth of the image being evaluated, decoded once for every evaluator."""
from __future__ import annotations

from typing import Optional

import numpy as np

from segdet.data.label_codec import LabelCodec
from segdet.structures.metadata import Metadata


class GroundTruthLabels:
    """Reads a dataset's label files with its LabelCodec, keeping the last one decoded: the
    evaluators of one run share an instance and each asks for the same file in turn, so each
    label file is decoded once per evaluation."""

    def __init__(self, metadata: Metadata):
        self.codec = LabelCodec(metadata)
        self._path: Optional[str] = None
        self._labels: Optional[np.ndarray] = None

    def read(self, path: str) -> np.ndarray:
        """HxW class ids of a label file (DataError naming the file when it cannot be used)."""
        if path != self._path:
            self._labels, self._path = None, None
            self._labels = self.codec.read(path)
            self._path = path
        return self._labels
