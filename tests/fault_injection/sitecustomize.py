"""Fault injection for tests/test_faults.py: put this folder on PYTHONPATH and every Python process
started with it (the CLI and its workers) imports this module at start-up.

``SVGSCORE_FAULT_OCR=DIR:N``: the first N processes that construct the OCR engine fail to load it,
as a broken model file or a failed allocation would. Processes claim a turn by creating
``DIR/ocr-claim-<i>`` exclusively, so exactly N fail, whichever they are; the claims show the
fault fired.
"""

import importlib.abc
import importlib.util
import os
import sys

_SPEC = os.environ.get("SVGSCORE_FAULT_OCR")


def _claim(folder: str, turns: int) -> bool:
    for i in range(turns):
        try:
            os.close(os.open(os.path.join(folder, f"ocr-claim-{i}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            continue
    return False


class _FaultyOcr(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "rapidocr_onnxruntime":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module
        folder, turns = _SPEC.rsplit(":", 1)

        def exec_module(module):
            run(module)
            real = module.RapidOCR

            class RapidOCR(real):
                def __init__(self, *args, **kwargs):
                    if _claim(folder, int(turns)):
                        raise RuntimeError("injected fault: the OCR model failed to load")
                    super().__init__(*args, **kwargs)

            module.RapidOCR = RapidOCR

        spec.loader.exec_module = exec_module
        return spec


if _SPEC:
    sys.meta_path.insert(0, _FaultyOcr())
