"""Running checks: the probe units (measure + judge), the runner (threads, timeouts), a
prepared run.

Nothing here prints: progress and prompts are callbacks the face layer supplies.
"""
