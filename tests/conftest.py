"""Settings for the whole test session."""
import os

import pytest


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
