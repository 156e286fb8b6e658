"""The ``irv2`` command line: a thin layer over the library (``python -m irv2`` or the ``irv2`` script).

Each subcommand parses its arguments and calls library functions (``irv2.load``, ``irv2.load_image``,
``irv2.top_k``, ``irv2.save``, ``irv2.hub``); nothing in the library imports this package.
"""
