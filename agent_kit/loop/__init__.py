"""The shift loop (`agent-kit monitor`): cadence, the hysteresis gate, the heartbeat spool and
courier, the traceroute child, the state file and desktop notifications.
"""
