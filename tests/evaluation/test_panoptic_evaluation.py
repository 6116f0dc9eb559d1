"""PanopticEvaluator: PQ / SQ / RQ worked out by hand on 10x10 images."""
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

from segdet.data.label_codec import LabelCodec
from segdet.structures.metadata import Metadata
from segdet.errors import DataError
from segdet.evaluation.panoptic_evaluation import PanopticEvaluator, panoptic_ground_truth

# 0 road (stuff), 1 car and 2 person (things), 3 border (ignore)
META = Metadata(["road", "car", "person", "border"], thing_class_ids=[1, 2], ignore_class_ids=[3])
ROAD, CAR, PERSON, BORDER = 0, 1, 2, 3


def box_mask(rows, cols, shape=(10, 10)):
    mask = np.zeros(shape, dtype=bool)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = True
    return mask


def rle(mask):
    r = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": r["size"], "counts": r["counts"].decode()}


A = box_mask((0, 5), (0, 5))  # car, 25 px
B = box_mask((0, 3), (7, 10))  # car, 9 px
ROAD_GT = box_mask((8, 10), (0, 5))  # road, 10 px


def make_dict(tmp_path, sem, annotations, name="img"):
    path = str(tmp_path / f"{name}.png")
    LabelCodec(META).write(path, sem)
    return {"file_name": f"/images/{name}.jpg", "image_id": name, "height": sem.shape[0], "width": sem.shape[1],
            "sem_seg_file_name": path, "annotations": annotations}


def basic_dict(tmp_path):
    sem = np.full((10, 10), BORDER, dtype=np.uint8)
    sem[A] = CAR
    sem[B] = CAR
    sem[ROAD_GT] = ROAD
    anns = [{"category_id": CAR, "iscrowd": 0, "segmentation": rle(A)},
            {"category_id": CAR, "iscrowd": 0, "segmentation": rle(B)}]
    return make_dict(tmp_path, sem, anns)


def prediction(segments):
    """segments: list of (mask, class id); ids 1.. in order; 0 elsewhere (unlabeled)."""
    seg = np.zeros((10, 10), dtype=np.int32)
    infos = []
    for k, (mask, cls) in enumerate(segments, start=1):
        seg[mask] = k
        infos.append({"id": k, "category_id": cls, "isthing": cls in META.thing_class_ids,
                      "area": int(mask.sum())})
    return {"panoptic_seg": (torch.as_tensor(seg), infos)}


def evaluate(d, output):
    """PQ of one image; the input is its dataset dict (the mapper's output carries all of its keys)."""
    ev = PanopticEvaluator(META)
    ev.reset()
    ev.process([d], [output])
    return ev.evaluate()["panoptic_seg"]


def test_perfect_prediction_gives_pq_100(tmp_path):
    d = basic_dict(tmp_path)
    res = evaluate(d, prediction([(B, CAR), (ROAD_GT, ROAD), (A, CAR)]))
    for key in ("PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st"):
        assert res[key] == pytest.approx(100.0), key
    assert res["PQ-car"] == pytest.approx(100.0) and res["PQ-road"] == pytest.approx(100.0)
    assert res["PQ-person"] == -1  # no TP, FP or FN: left out of the means
    assert "PQ-border" not in res


def test_partial_case_by_hand(tmp_path):
    d = basic_dict(tmp_path)
    car_part = box_mask((0, 3), (0, 5))  # 15 of A's 25 px: IoU 0.6 -> matched
    person_fp = box_mask((3, 5), (0, 5))  # the rest of A, as person: a false positive
    road_pred = box_mask((7, 10), (0, 4))  # 8 road px + 4 border (void) px of row 7
    # B is not predicted: a false negative.
    res = evaluate(d, prediction([(car_part, CAR), (person_fp, PERSON), (road_pred, ROAD)]))
    # road: the 4 void px leave the union: IoU = 8 / (12 + 10 - 8 - 4) = 0.8.
    # car: TP 1 (0.6), FN 1 -> PQ 0.6 / 1.5 = 0.4, SQ 0.6, RQ 1 / 1.5.
    # person: FP 1 -> PQ = SQ = RQ = 0.  road: PQ = SQ = 0.8, RQ 1.
    assert res["PQ-car"] == pytest.approx(40.0)
    assert res["PQ-person"] == pytest.approx(0.0)
    assert res["PQ-road"] == pytest.approx(80.0)
    assert res["PQ"] == pytest.approx(100 * (0.4 + 0 + 0.8) / 3)
    assert res["SQ"] == pytest.approx(100 * (0.6 + 0 + 0.8) / 3)
    assert res["RQ"] == pytest.approx(100 * (2 / 3 + 0 + 1) / 3)
    assert res["PQ_th"] == pytest.approx(100 * 0.4 / 2)
    assert res["SQ_th"] == pytest.approx(100 * 0.6 / 2)
    assert res["RQ_th"] == pytest.approx(100 * (2 / 3) / 2)
    assert res["PQ_st"] == pytest.approx(80.0)
    assert res["SQ_st"] == pytest.approx(80.0)
    assert res["RQ_st"] == pytest.approx(100.0)


def void_dict(tmp_path):
    sem = np.full((10, 10), BORDER, dtype=np.uint8)
    crowd = box_mask((5, 8), (5, 10))
    unannotated = box_mask((5, 7), (0, 3))  # car pixels without an instance: VOID
    for mask, cls in [(A, CAR), (B, CAR), (unannotated, CAR), (crowd, CAR), (ROAD_GT, ROAD)]:
        sem[mask] = cls
    anns = [{"category_id": CAR, "iscrowd": 0, "segmentation": rle(A)},
            {"category_id": CAR, "iscrowd": 1, "segmentation": rle(crowd)},
            {"category_id": CAR, "iscrowd": 0, "segmentation": rle(B)}]
    return make_dict(tmp_path, sem, anns, "void"), crowd


def test_void_and_crowd_handling(tmp_path):
    d, crowd = void_dict(tmp_path)
    a_plus_void = A | box_mask((5, 6), (0, 3))  # A and 3 px of the unannotated car: still IoU 1
    segments = [
        (a_plus_void, CAR),
        (B, CAR),
        (ROAD_GT, ROAD),
        (box_mask((6, 7), (0, 3)), CAR),  # only unannotated car pixels: void, not a FP
        (crowd, CAR),  # on the crowd region of its class: not a FP (and the crowd is no FN)
        (box_mask((3, 5), (5, 10)), PERSON),  # only border pixels: void, not a FP
    ]
    res = evaluate(d, prediction(segments))
    assert res["PQ"] == pytest.approx(100.0) and res["SQ"] == pytest.approx(100.0)
    assert res["PQ-person"] == -1

    # Exactly half void is not "mostly" void: a false positive.
    road_left = box_mask((8, 10), (0, 4))  # 8 of the 10 road px: IoU 0.8
    half_void = box_mask((8, 10), (4, 6))  # 2 road px + 2 border px
    res = evaluate(d, prediction([(A, CAR), (B, CAR), (road_left, ROAD), (half_void, PERSON)]))
    assert res["PQ-person"] == pytest.approx(0.0)  # counted: FP 1
    assert res["PQ-road"] == pytest.approx(80.0)
    assert res["PQ"] == pytest.approx(100 * (1 + 0 + 0.8) / 3)


def test_ground_truth_segments():
    sem = np.full((10, 10), BORDER, dtype=np.uint8)
    sem[A] = CAR
    sem[ROAD_GT] = ROAD
    sem[0:2, 6:10] = CAR  # no instance: VOID
    seg, segments = panoptic_ground_truth(sem, [{"category_id": CAR, "segmentation": rle(A)}], [1, 2], [3])
    assert segments == {1: {"category_id": CAR, "iscrowd": 0}, 2: {"category_id": ROAD, "iscrowd": 0}}
    assert (seg == 1).sum() == 25 and (seg == 2).sum() == 10 and (seg == 0).sum() == 65


def test_bad_predictions_are_errors(tmp_path):
    d = basic_dict(tmp_path)
    out = prediction([(A, CAR)])
    out["panoptic_seg"][0][9, 9] = 7  # a segment id without segments_info
    with pytest.raises(DataError, match=r"img.jpg.*segment ids \[7\]"):
        evaluate(d, out)
    with pytest.raises(DataError, match="category 3"):
        evaluate(d, prediction([(A, BORDER)]))
