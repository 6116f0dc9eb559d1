"""Arrays from whatever holds them: numpy arrays, lists, torch tensors (on any device)."""
from __future__ import annotations

from typing import Any

import numpy as np


def to_numpy(value: Any) -> np.ndarray:
    """A numpy array of a torch tensor (any device), numpy array or array-like; torch is not imported."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)
