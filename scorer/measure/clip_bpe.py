"""CLIP's byte-pair tokenizer without torch: prompts tokenized for the text tower in a process that never loads torch.

open_clip's ``SimpleTokenizer`` is the reference, but its module imports torch, and importing any
``open_clip`` submodule runs the package ``__init__``, which loads torch and torchvision (~3 s, ~750 MB).
This is the same algorithm over the same vocabulary file and the same cleaning libraries (ftfy, regex,
html); tests/test_clip_bpe.py checks it against the reference token for token.
"""

from __future__ import annotations

import gzip
import html
import importlib.util
import string
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Literal

import ftfy
import numpy as np
import regex

VOCABULARY_FILE = "bpe_simple_vocab_16e6.txt.gz"
START_OF_TEXT = "<start_of_text>"
END_OF_TEXT = "<end_of_text>"
# The merges open_clip reads: the file's first line is a header, and CLIP's vocabulary of 49408 is
# 256 bytes, 256 end-of-word bytes, these merges and the two special tokens.
_MERGES = slice(1, 49152 - 256 - 2 + 1)
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def bpe_vocabulary_path() -> Path:
    """The merges file bundled with open_clip, found without importing open_clip (and so torch).

    ``find_spec`` of a top-level package locates it without executing its ``__init__``.
    """
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"open_clip is not installed: CLIP's BPE vocabulary ({VOCABULARY_FILE}) ships with it")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / VOCABULARY_FILE
        if path.is_file():
            return path
    folders = ", ".join(spec.submodule_search_locations)
    raise FileNotFoundError(f"{VOCABULARY_FILE} is not in open_clip's package folder ({folders}): a broken install?")


def _bytes_to_unicode() -> dict[int, str]:
    """Every byte as a printable character, so BPE never sees whitespace or control characters (as in CLIP)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + n) for n, b in enumerate(others)}}


_BYTE_ENCODER = _bytes_to_unicode()


def _basic_clean(text: str) -> str:
    # As the reference: ftfy unescapes entities only in text without "<" and ">"; the two unescapes cover the rest.
    return html.unescape(html.unescape(ftfy.fix_text(text))).strip()


def _whitespace_clean(text: str) -> str:
    return " ".join(text.split())


def _canonicalize(text: str) -> str:
    return " ".join(text.replace("_", " ").translate(_PUNCTUATION).lower().split())


_CLEANERS = {
    "lower": lambda text: _whitespace_clean(_basic_clean(text)).lower(),
    "whitespace": lambda text: _whitespace_clean(_basic_clean(text)),
    "canonicalize": lambda text: _canonicalize(_basic_clean(text)),
}


class ClipBpeTokenizer:
    """open_clip's ``SimpleTokenizer(context_length=, clean=)`` without torch; returns numpy, not a tensor.

    Not supported: ``additional_special_tokens`` and ``reduction_mask`` (the random or syntax-based shortening
    open_clip offers for training); texts that are too long are cut, as by default.
    """

    def __init__(
        self,
        vocabulary: Path | None = None,
        *,
        context_length: int = 77,
        clean: Literal["lower", "whitespace", "canonicalize"] = "lower",
    ) -> None:
        if context_length < 1:
            raise ValueError(f"context_length must be at least 1, not {context_length}")
        if clean not in _CLEANERS:
            raise ValueError(f"clean must be one of {', '.join(_CLEANERS)}, not {clean!r}")
        lines = gzip.decompress((vocabulary or bpe_vocabulary_path()).read_bytes()).decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[_MERGES]]
        symbols = list(_BYTE_ENCODER.values())
        vocab = [*symbols, *(s + "</w>" for s in symbols), *("".join(m) for m in merges), START_OF_TEXT, END_OF_TEXT]
        self.encoder = {symbol: i for i, symbol in enumerate(vocab)}
        self._ranks = {merge: rank for rank, merge in enumerate(merges)}
        self.sot_token_id = self.encoder[START_OF_TEXT]
        self.eot_token_id = self.encoder[END_OF_TEXT]
        self.context_length = context_length
        self._clean = _CLEANERS[clean]
        # As in the reference, a prompt's own "<end_of_text>" is one token and, once cleaned to lower case,
        # takes the special token's id (through the cache); any other casing is byte-pair encoded as text.
        self._pattern = regex.compile(
            rf"{START_OF_TEXT}|{END_OF_TEXT}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+",
            regex.IGNORECASE,
        )
        # Word (as byte characters) → its BPE symbols; prompts repeat words, and BPE is the costly part.
        self._cache: dict[str, tuple[str, ...]] = {START_OF_TEXT: (START_OF_TEXT,), END_OF_TEXT: (END_OF_TEXT,)}

    def _bpe(self, token: str) -> tuple[str, ...]:
        if token in self._cache:
            return self._cache[token]
        word = (*token[:-1], token[-1] + "</w>")
        while len(word) > 1:
            pairs = set(pairwise(word))
            best = min(pairs, key=lambda pair: self._ranks.get(pair, float("inf")))
            if best not in self._ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        self._cache[token] = word
        return word

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text`` after cleaning, without the start and end tokens."""
        ids: list[int] = []
        for token in self._pattern.findall(self._clean(text)):
            ids.extend(self.encoder[symbol] for symbol in self._bpe("".join(_BYTE_ENCODER[b] for b in token.encode("utf-8"))))
        return ids

    def __call__(self, texts: str | Sequence[str]) -> np.ndarray:
        """int64 ids, shape (len(texts), context_length): start, tokens, end, zero padding.

        A longer text is cut to context_length and its last id replaced by the end token, as open_clip does.
        """
        if isinstance(texts, str):
            texts = [texts]
        result = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot_token_id, *self.encode(text), self.eot_token_id]
            if len(ids) > self.context_length:
                ids = [*ids[: self.context_length - 1], self.eot_token_id]
            result[row, : len(ids)] = ids
        return result
