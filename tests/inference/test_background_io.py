"""OrderedReader / OrderedWriter: order kept, work bounded, errors raised in the caller, no hang."""
import threading
import time

import pytest

from segdet.inference.background_io import OrderedReader, OrderedWriter


def test_reader_keeps_order_reads_in_threads_and_stays_bounded():
    started = []
    lock = threading.Lock()

    def read(i):
        with lock:
            started.append(i)
        time.sleep(0.002 * (5 - i % 5))  # later items finish first
        return i * 10, threading.get_ident()

    reader = OrderedReader(read, range(20), workers=3, ahead=4)
    got = []
    for item, future in reader:
        # Never more than `ahead` items beyond the one handed out are started.
        assert max(started) <= item + 4
        got.append((item, future.result()[0]))
        threads = future.result()[1]
    reader.close()
    assert got == [(i, i * 10) for i in range(20)]
    assert threads != threading.get_ident()


def test_serial_reader_reads_when_asked():
    log = []
    reader = OrderedReader(lambda i: log.append(("read", i)) or i, range(3), workers=0, ahead=4)
    for item, future in reader:
        log.append(("use", future.result()))
    assert log == [("read", 0), ("use", 0), ("read", 1), ("use", 1), ("read", 2), ("use", 2)]


def test_reader_error_is_the_item_s_own():
    def read(i):
        if i == 1:
            raise ValueError("bad item 1")
        return i

    reader = OrderedReader(read, range(3), workers=2, ahead=2)
    outcomes = []
    for item, future in reader:
        try:
            outcomes.append(future.result())
        except ValueError as e:
            outcomes.append(str(e))
    reader.close()
    assert outcomes == [0, "bad item 1", 2]


def test_writer_hands_results_over_in_order_and_bounds_the_queue():
    done = []
    running = []
    peak = [0]
    lock = threading.Lock()

    def job(i):
        with lock:
            running.append(i)
            peak[0] = max(peak[0], len(running))
        time.sleep(0.003 * (3 - i % 3))
        with lock:
            running.remove(i)
        return i

    writer = OrderedWriter(done.append, workers=2, limit=3)
    for i in range(12):
        writer.submit(job, i)
        assert len(writer._pending) <= 3
    writer.finish()
    writer.close()
    assert done == list(range(12))
    assert peak[0] == 2  # both threads were used


@pytest.mark.parametrize("workers", [0, 2])
def test_writer_error_surfaces_unchanged_and_close_does_not_hang(workers):
    error = OSError("cannot write image out/b.png")
    gate = threading.Event()

    def job(i):
        if i == 1:
            raise error
        if i > 1:
            gate.wait(5)  # jobs after the failing one are still queued or running
        return i

    done = []
    writer = OrderedWriter(done.append, workers=workers, limit=4)

    def run():
        try:
            for i in range(6):
                writer.submit(job, i)
            writer.finish()
        finally:
            gate.set()
            writer.close()

    with pytest.raises(OSError) as raised:
        run()
    assert raised.value is error
    assert done == [0]
