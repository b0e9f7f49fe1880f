"""What the user sees: the typer CLI, terminal and HTML reports, charts, the window, devices,
status and login.

The only layer that prints.
"""
