"""What the user sees: the typer CLI, terminal and HTML reports, charts, the window, devices, status/login.

The only layer that prints.
"""
