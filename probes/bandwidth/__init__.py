"""The line: download and upload speed, and latency under load."""
