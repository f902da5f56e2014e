"""svgscore's own measures. Registered through the ``svgscore.measures`` entry point, the same
path an installed plugin package takes (``[project.entry-points."svgscore.measures"]``)."""

from . import checks, clip, craft, defences, vlm  # noqa: F401  (importing registers them)
