"""``python -m ngo_kit`` runs the ``ngo-kit`` command line."""

from ngo_kit.cli import main

main()
