"""scripts/fuzz.py's own robustness: what its mutator is handed must never stop `make fuzz`."""

import gzip
import importlib.util

from .conftest import REPO

_spec = importlib.util.spec_from_file_location("fuzz_script", REPO / "scripts" / "fuzz.py")
fuzz_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz_script)


def test_a_broken_gzip_stream_is_edited_as_bytes_not_raised():
    """libFuzzer's byte mutations keep gzip's magic on a stream zlib then rejects (zlib.error, not an OSError)."""
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="10" height="10"/></svg>'
    packed = bytearray(gzip.compress(svg))
    packed[12:20] = b"\xff" * 8  # inside the deflate stream: "invalid distance too far back" and the like
    text = fuzz_script.as_text(bytes(packed))
    assert text.startswith("\x1f\x8b")
    assert fuzz_script.as_text(gzip.compress(svg)) == svg.decode()
    assert fuzz_script.as_text(b"\x1f\x8b") == "\x1f\x8b"  # magic alone: EOF inside the header
