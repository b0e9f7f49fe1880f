"""PyInstaller hook for ``webrtcvad`` as shipped by the ``webrtcvad-wheels`` distribution.

Overrides the contrib hook, which copies the metadata of a distribution named ``webrtcvad`` and
so fails the build when the module comes from ``webrtcvad-wheels`` (the project's dependency,
which has wheels for every OS). ``webrtcvad.py`` reads ``version('webrtcvad-wheels')``.
"""

from importlib.metadata import PackageNotFoundError

from PyInstaller.utils.hooks import copy_metadata

datas = []
for _dist in ("webrtcvad-wheels", "webrtcvad"):
    try:
        datas = copy_metadata(_dist)
        break
    except PackageNotFoundError:
        continue
