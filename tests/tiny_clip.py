"""A tiny, random-weight open_clip model for tests: no download, loads in well under a second.

:func:`build_tiny_clip` writes two files into a folder:

* ``<name>.json`` — an open_clip model config. open_clip registers a config file under its
  *stem*, so the stem is the model name that ``clip.model`` must use. The file needs the
  top-level ``embed_dim`` / ``vision_cfg`` / ``text_cfg`` keys or open_clip ignores it.
* ``tiny.pt`` — the ``state_dict`` of a model created from that config with a fixed seed.

svgscore loads them the way a user would: ``clip.model_config_file`` (registered in the
process that loads the model) plus a local checkpoint given as ``clip.weights``,
``--clip-weights`` or ``SVGSCORE_CLIP_WEIGHTS``.

Import this only where torch is wanted: it imports torch and open_clip lazily, inside the
builder, so importing the module itself is free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

TINY_MODEL_NAME = "svgscore-tiny-test"  # must not contain "siglip": open_clip picks tokenizers by name

TINY_MODEL_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 32, "patch_size": 32},
    # vocab_size matches open_clip's bundled BPE tokenizer; heads must divide width.
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2},
}


@dataclass(frozen=True)
class TinyClip:
    name: str
    config_file: Path
    checkpoint: Path

    def clip_section(self, **overrides: object) -> dict[str, object]:
        """The ``clip:`` config section that loads this model from its checkpoint, in fp32 (what
        the tests' independent computations use; ``precision="bf16"`` to override)."""
        return {
            "model": self.name,
            "model_config_file": str(self.config_file),
            "weights": str(self.checkpoint),
            "precision": "fp32",
            **overrides,
        }


def build_tiny_clip(folder: Path, *, name: str = TINY_MODEL_NAME, seed: int = 0) -> TinyClip:
    """Write the model config and a seeded random checkpoint into ``folder``."""
    import open_clip
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    config_file = folder / f"{name}.json"
    config_file.write_text(json.dumps(TINY_MODEL_CONFIG, indent=2), encoding="utf-8")
    open_clip.add_model_config(config_file)
    if name not in open_clip.list_models():
        raise RuntimeError(f"open_clip did not register {config_file}")

    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None)
    checkpoint = folder / "tiny.pt"
    torch.save({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}, checkpoint)
    return TinyClip(name, config_file, checkpoint)
