"""Path to the center: interfaces, the path-test stream and its statistics, traceroute, VPN,
the E-model."""
