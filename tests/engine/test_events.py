"""metrics.json after a kill: a torn last line is skipped on read and repaired on --resume."""
import json

from segdet.engine.events import EventStorage, JSONWriter, read_metrics
from tests.logs import captured_warnings


def _torn_metrics(path):
    lines = [json.dumps({"iteration": it, "total_loss": 1.0 / (it + 1)}) for it in range(6)]
    # A kill while the writer appended the record of iteration 6.
    path.write_text("\n".join(lines) + "\n" + '{"iteration": 6, "total_lo')
    return lines


def test_a_torn_last_line_is_skipped_on_read(tmp_path):
    path = tmp_path / "metrics.json"
    lines = _torn_metrics(path)
    with captured_warnings("segdet.engine") as warnings:
        records = read_metrics(str(path))
    assert records == [json.loads(line) for line in lines]
    assert len(warnings) == 1 and "line 7" in warnings[0]


def test_resume_repairs_the_torn_line_and_appends_after_it(tmp_path):
    path = tmp_path / "metrics.json"
    lines = _torn_metrics(path)
    writer = JSONWriter(str(path), start_iter=4)  # resumed from the checkpoint of iteration 3
    assert path.read_text() == "\n".join(lines[:4]) + "\n"
    storage = EventStorage(start_iter=4)
    storage.put_scalar("total_loss", 0.5)
    writer.write(storage)
    assert [json.loads(line)["iteration"] for line in path.read_text().splitlines()] == [0, 1, 2, 3, 4]
