"""PyInstaller runtime hook: make sounddevice load the PortAudio library bundled with the agent.

The Linux sounddevice wheel carries no PortAudio; the spec bundles the build machine's
``libportaudio.so.2`` (and its JACK client library), so the agent works on a workstation that
never installed ``libportaudio2``. sounddevice finds the library with
``ctypes.util.find_library("portaudio")``, which on Linux asks ``ldconfig`` and so never sees the
bundle. This hook answers that one name with the bundled file.

Start-up stays cheap: nothing is imported here; the patch is applied by a meta-path finder the
first time ``sounddevice`` is imported (``ctypes.util`` costs a few milliseconds that
``agent-kit --version`` does not need). On Windows and macOS the sounddevice wheels bundle
PortAudio themselves (``_sounddevice_data/portaudio-binaries``, collected by the contrib hook),
so this hook does nothing there.
"""

import os
import sys


def _install() -> None:
    bundled = os.path.join(sys._MEIPASS, "libportaudio.so.2")  # type: ignore[attr-defined]
    if not sys.platform.startswith("linux") or not os.path.isfile(bundled):
        return

    class _PatchBeforeSounddevice:
        """Meta-path finder that finds nothing; it only patches find_library once."""

        @staticmethod
        def find_spec(name, path=None, target=None):  # noqa: ANN001, ANN205 - finder protocol
            if name == "sounddevice":
                sys.meta_path.remove(_PatchBeforeSounddevice)
                import ctypes.util

                original = ctypes.util.find_library

                def find_library(libname: str) -> "str | None":
                    return bundled if libname == "portaudio" else original(libname)

                ctypes.util.find_library = find_library
            return None

    sys.meta_path.insert(0, _PatchBeforeSounddevice)


_install()
del _install
