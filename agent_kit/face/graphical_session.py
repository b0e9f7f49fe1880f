"""Is there a graphical session to open the window on? Chosen once at import.

On Linux a desktop session names its display server (``DISPLAY`` for X11, ``WAYLAND_DISPLAY``
for Wayland); a console or an ssh login has neither. Windows and macOS run the agent in the
user's desktop session.
"""

from __future__ import annotations

import os
import sys

if sys.platform.startswith("linux"):
    def has_graphical_session() -> bool:
        """True when an X11 or Wayland display is set for this process."""
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))

else:
    def has_graphical_session() -> bool:
        """Always True: Windows and macOS start the agent in the user's desktop session."""
        return True
