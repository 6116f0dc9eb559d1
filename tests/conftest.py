"""Settings for the whole test session. Importing segdet first makes torch's OpenMP threads wait
without spinning (see segdet/__init__.py), also in the subprocesses the tool tests start."""
import os

import pytest

import segdet  # noqa: F401


@pytest.fixture(scope="session", autouse=True)
def dataset_check_cache(tmp_path_factory):
    """The dataset check's per-file cache in a folder of the session (tools run by the tests
    inherit it), not in the user's ~/.cache/segdet."""
    before = os.environ.get("SEGDET_CACHE")
    os.environ["SEGDET_CACHE"] = str(tmp_path_factory.mktemp("segdet_cache"))
    yield os.environ["SEGDET_CACHE"]
    if before is None:
        os.environ.pop("SEGDET_CACHE", None)
    else:
        os.environ["SEGDET_CACHE"] = before
