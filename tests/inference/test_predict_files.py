"""predict_files with background I/O (io_workers > 0) against the serial path (io_workers 0):
the same bytes in every file, the same skipped inputs, a writer's error raised unchanged, and a
Ctrl-C that stops at once without half-written files."""
import os
import threading
import time

import cv2
import pytest

import segdet.inference.predict_files as predict_files_module
from segdet.errors import DataError
from segdet.inference.predict_files import predict_files
from segdet.inference.predictor import Predictor
from segdet.utils.files import is_temp_file
from tests.inference.common import random_image, save_tiny_checkpoint

SIZES = {"a.png": (48, 64), "b.jpg": (40, 56), "c.png": (48, 64), "e.png": (48, 64), "f.bmp": (40, 56)}
CORRUPT = "d.png"


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    # Panoptic: every writer runs (segmentation and confidence PNG, overlay JPEG, COCO json).
    path, _, _ = save_tiny_checkpoint(tmp_path_factory.mktemp("predict_files"), mask_on=True, seed=1)
    return Predictor.from_checkpoint(path)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    for k, (name, (h, w)) in enumerate(SIZES.items()):
        assert cv2.imwrite(str(folder / name), random_image(h, w, seed=20 + k))
    (folder / CORRUPT).write_bytes(b"\x89PNG\r\n\x1a\n and nothing else")
    return folder


def files_of(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_background_io_writes_the_serial_path_s_bytes(tmp_path, predictor, inputs, monkeypatch, caplog):
    writers = []
    real = predict_files_module.write_segmentation

    def recording(path, *args, **kwargs):
        writers.append((os.path.basename(path), threading.current_thread().name))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(predict_files_module, "write_segmentation", recording)
    summaries = {}
    for workers in (0, 2):
        caplog.clear()
        summaries[workers] = predict_files(predictor, [str(inputs)], str(tmp_path / f"out{workers}"),
                                           batch_size=2, io_workers=workers)
        assert f"Skipping {inputs / CORRUPT}" in caplog.text
    serial, background = files_of(tmp_path / "out0"), files_of(tmp_path / "out2")
    assert sorted(serial) == sorted(background)
    assert len(serial) == 3 * len(SIZES) + 2  # png, confidence, overlay per image; COCO json, manifest
    assert [name for name in serial if serial[name] != background[name]] == []
    for summary in summaries.values():
        assert summary.skipped == [(str(inputs / CORRUPT), summaries[0].skipped[0][1])]
        assert summary.num_predicted == len(SIZES) and summary.coco_images == len(SIZES)
    # In input order, by the main thread in the serial run and by writer threads in the other.
    stems = [os.path.splitext(n)[0] + ".png" for n in sorted(SIZES)]
    assert [name for name, _ in writers] == stems + stems
    assert {thread for _, thread in writers[:len(stems)]} == {threading.main_thread().name}
    assert all(thread.startswith("segdet-write") for _, thread in writers[len(stems):])


def _run_in_thread(fn, timeout=60):
    """fn() in a thread; (returned, raised), failing the test if it does not end (a hang)."""
    outcome = {}

    def target():
        try:
            outcome["returned"] = fn()
        except BaseException as e:  # noqa: B902 - handed to the test
            outcome["raised"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "predict_files hung"
    return outcome.get("returned"), outcome.get("raised")


def test_a_writer_error_is_raised_as_the_serial_path_raises_it(tmp_path, predictor, inputs, monkeypatch):
    real = predict_files_module.write_overlay

    def failing(path, *args, **kwargs):
        if os.path.basename(path) == "c_overlay.jpg":
            raise DataError(f"cannot write image {path} (disk full)")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(predict_files_module, "write_overlay", failing)
    messages = {}
    for workers in (0, 2):
        out = tmp_path / f"out{workers}"
        returned, raised = _run_in_thread(lambda: predict_files(predictor, [str(inputs)], str(out), io_workers=workers))
        assert returned is None and isinstance(raised, DataError)
        messages[workers] = str(raised).replace(f"out{workers}", "OUT")
        assert not [p for p in os.listdir(out) if is_temp_file(p)]
        assert "segdet_predictions.json" not in os.listdir(out)
    assert messages[2] == messages[0] == f"cannot write image {tmp_path / 'OUT' / 'c_overlay.jpg'} (disk full)"


def test_ctrl_c_stops_at_once_and_leaves_whole_files(tmp_path, predictor, inputs, monkeypatch):
    real_write, real_predict = predict_files_module.write_overlay, predictor.predict_batch
    calls = []

    def slow_write(*args, **kwargs):
        time.sleep(0.3)  # writes still queued and running when Ctrl-C comes
        return real_write(*args, **kwargs)

    def interrupted(*args, **kwargs):
        calls.append(time.perf_counter())
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(predict_files_module, "write_overlay", slow_write)
    monkeypatch.setattr(predictor, "predict_batch", interrupted)
    out = tmp_path / "out"
    _, raised = _run_in_thread(lambda: predict_files(predictor, [str(inputs)], str(out), io_workers=2))
    stopped = time.perf_counter() - calls[-1]
    assert isinstance(raised, KeyboardInterrupt)
    # The writes under way end (two threads, 0.3 s each), the queued ones are dropped.
    assert stopped < 2.0
    names = os.listdir(out)
    assert not [n for n in names if is_temp_file(n)] and "segdet_predictions.json" not in names
    overlays = [n for n in names if n.endswith("_overlay.jpg")]
    assert 0 < len(overlays) < len(SIZES)
    for name in overlays:
        assert cv2.imread(str(out / name)) is not None  # whole files only
