"""agent-kit: verifies a contact-center agent's home workstation and keeps the center informed."""

__version__ = "0.1.0"
