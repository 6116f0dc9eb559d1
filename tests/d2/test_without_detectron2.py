"""Without detectron2 (as in CI): `import segdet.d2` and tools/train_net_d2.py say, in one line,
that detectron2 is needed and how to install it. (With detectron2 installed,
test_config_and_datasets.py checks the same with detectron2 hidden.)"""
import importlib.util

import pytest

from tests.d2.conftest import run_tool

pytestmark = pytest.mark.skipif(importlib.util.find_spec("detectron2") is not None,
                                reason="detectron2 is installed here")


def test_import_segdet_d2_says_how_to_install_detectron2():
    with pytest.raises(ImportError, match=r"^segdet\.d2 needs detectron2 .*install it from its source"):
        import segdet.d2  # noqa: F401


def test_train_net_d2_exits_with_that_line():
    result = run_tool("train_net_d2.py", "--config-file", "configs/detectron2/demo.yaml", timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: segdet.d2 needs detectron2")
