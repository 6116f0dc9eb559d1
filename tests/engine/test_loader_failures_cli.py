"""A bad file found by a loader worker ends training within seconds with the one line a
single-process run prints, after saving the last completed iteration (it used to print the
worker's traceback and hang). The dataset check is off here, so that the loader finds them."""
import pytest

from segdet.checkpoint import load_checkpoint_file
from segdet.data.samplers import TrainingSampler
from tests.engine.cli import error_lines, run_tools, write_bad_input

KINDS = ["cut_in_half", "label_value_7", "label_16bit_300"]
WORKERS = [1, 2]
SEED, BATCH = 3, 2
TIMEOUT = 150  # seconds; a run takes about 10


def _second_batch_image() -> int:
    """The image of the second training iteration (stream position 2): iteration 1 completes,
    and the failure comes in iteration 2."""
    return int(TrainingSampler(4, seed=SEED, rank=0, world_size=1).epoch_order(0)[BATCH])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    bad = _second_batch_image()
    cases, commands = {}, []
    for kind in KINDS:
        for workers in WORKERS:
            root = tmp_path_factory.mktemp(f"{kind}_{workers}w")
            config = write_bad_input(root, kind, bad=bad)
            cases[kind, workers] = root
            commands.append(["--config-file", config, "DATALOADER.CHECK_DATASET", "False",
                             "DATALOADER.NUM_WORKERS", str(workers), "SOLVER.MAX_ITER", "1000"])
    results = run_tools(commands, timeout=TIMEOUT)
    return {case: (root, bad, result) for (case, root), result in zip(cases.items(), results)}


@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_file_in_a_worker_ends_training_with_one_line(runs, kind, workers):
    root, bad, run = runs[kind, workers]
    assert not run.timed_out, f"still running after {TIMEOUT} s:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
    assert run.returncode == 2, run.stderr[-3000:]
    bad_file = root / ("images" if kind == "cut_in_half" else "labels") / f"im{bad}.png"
    problem = {"cut_in_half": f"image {bad_file} is corrupt (cut short",
               "label_value_7": f"label file {bad_file}: value(s) [7] are not declared classes",
               "label_16bit_300": f"label file {bad_file}: value(s) [300] are not declared classes"}[kind]
    lines = error_lines(run)
    assert len(lines) == 1 and lines[0].startswith(f"error: {problem}"), run.stderr[-3000:]
    assert "Traceback" not in run.stdout + run.stderr
    # Iteration 1 completed before the bad batch: its checkpoint is what --resume continues from.
    assert (root / "out" / "last_checkpoint").read_text() == "model_0000000.pth"
    assert load_checkpoint_file(str(root / "out" / "model_0000000.pth"))["iteration"] == 0
