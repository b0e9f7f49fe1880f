"""Judging: readings + policy -> ``CheckResult``s. Pure functions, no I/O, no printing.

One module per probe group (``system``, ``link``, ``vpn``, ``network``, ``hops``,
``bandwidth``, ``audio``), each turning its reading into results with the level rule of
``agent_kit.core.levels`` and adding the plain-words message and the fix; ``path`` judges the
path unit's two readings (``network`` and ``hops``) in one call; ``diagnosis`` ranks the likely
causes of a whole report.
"""
