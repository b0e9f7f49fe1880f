"""Measurement only: each module collects one kind of reading and returns a frozen dataclass.

No thresholds, no printing, no imports from ``agent_kit``.
"""
