import os
from pathlib import Path

# Tests are offline by design: never let a test wait ~47 s on hub download retries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from scorer import Scorer  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
LADDER = sorted((FIXTURES / "ladder").glob("*.svg"))
BROKEN = sorted((FIXTURES / "broken").glob("*.svg"))
STRUCTURAL = {"clip": {"enabled": False}}


@pytest.fixture(scope="session")
def structural() -> Scorer:
    """One structural-only scorer (CLIP off) shared by the session: workers start once."""
    with Scorer(STRUCTURAL, jobs=2) as scorer:
        yield scorer


def svg(body: str, view_box: str = "0 0 400 300", **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{view_box}"{extra}>{body}</svg>'


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    """Runs that enable the result cache write to a throwaway folder, never the user's."""
    os.environ["SVGSCORE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
