"""``python -m irv2``: the same command line as the ``irv2`` script."""

from .cli.main import main

raise SystemExit(main())
