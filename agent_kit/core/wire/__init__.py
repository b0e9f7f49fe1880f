"""What crosses the network and both sides must agree on byte for byte (agent and center).
"""
