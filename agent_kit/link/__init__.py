"""The link to the center: discovery, the signed client, enrollment, report upload, and the
agent's state folder.
"""
