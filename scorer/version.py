"""svgscore's version and source fingerprint, in a module that imports nothing of svgscore's,
so any layer can say what made a record."""

import functools
import hashlib
from pathlib import Path

__version__ = "0.2.0"


@functools.lru_cache(maxsize=1)
def source_sha256() -> str:
    """A hash of svgscore's own Python source: a changed check must not be answered from the
    cache, and an editable install changes its code without changing its version."""
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
