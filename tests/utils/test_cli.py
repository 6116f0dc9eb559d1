import argparse

import pytest

from segdet.utils.cli import positive_int


def _parser():
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--num-images", type=positive_int)
    return parser


def test_positive_int_accepts_one_and_more():
    assert _parser().parse_args(["--num-images", "1"]).num_images == 1
    assert _parser().parse_args(["--num-images", "120"]).num_images == 120


@pytest.mark.parametrize("text", ["0", "-3"])
def test_positive_int_names_the_flag_and_the_value(text, capsys):
    with pytest.raises(SystemExit) as stop:
        _parser().parse_args(["--num-images", text])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--num-images" in err and f"must be at least 1, got {text}" in err
