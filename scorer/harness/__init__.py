"""Generation harness: ask models for SVG (``generate``), pull the SVG out of replies (``extract``)."""
