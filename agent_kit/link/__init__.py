"""The link to the center: discovery, the signed client, enrollment, report upload, the state folder.
"""
