"""``python -m scorer`` runs the svgscore command line."""

from .cli import main

main()
