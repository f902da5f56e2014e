"""The pipeline's layering is a contract: ``lint-imports`` checks the layers written in
pyproject.toml ([tool.importlinter]), so an import that runs upward — the start of the next
cycle — fails here."""

import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import REPO


def test_import_layers_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is part of the dev extra"
    proc = subprocess.run([lint, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout
