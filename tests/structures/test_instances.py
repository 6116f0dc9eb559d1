import pickle

import numpy as np
import pytest
import torch

from segdet.structures.instances import Instances


def make():
    return Instances((4, 5), pred_boxes=torch.tensor([[0.0, 0, 1, 1], [1, 1, 3, 3], [2, 0, 5, 4]]),
                     scores=torch.tensor([0.9, 0.5, 0.7]), pred_classes=torch.tensor([1, 2, 1]))


def test_fields_index_and_convert():
    inst = make()
    assert len(inst) == 3 and inst.image_size == (4, 5) and inst.has("scores") and not inst.has("pred_masks")
    kept = inst[inst.scores > 0.6]
    assert kept.pred_classes.tolist() == [1, 1] and kept.scores.tolist() == pytest.approx([0.9, 0.7])
    assert inst[1].pred_boxes.tolist() == [[1, 1, 3, 3]] and len(inst[:0]) == 0
    as_numpy = inst.numpy()
    assert isinstance(as_numpy.scores, np.ndarray) and as_numpy.pred_classes.tolist() == [1, 2, 1]
    with pytest.raises(AttributeError, match="no field 'pred_masks'"):
        inst.pred_masks


def test_fields_of_another_length_are_refused_and_pickling_keeps_the_fields():
    inst = make()
    with pytest.raises(ValueError, match="field 'pred_masks' has 2 entries, the others 3"):
        inst.set("pred_masks", torch.zeros(2, 4, 5, dtype=torch.bool))
    copy = pickle.loads(pickle.dumps(inst))  # as a loader worker sends it
    assert copy.image_size == (4, 5) and torch.equal(copy.scores, inst.scores)
