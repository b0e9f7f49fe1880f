"""Headset and room: audio devices, the microphone capture and its measurement math."""
