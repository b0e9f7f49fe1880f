#!/usr/bin/env python3
"""Build the frozen desktop agent ``agent-kit`` with PyInstaller (one-file and/or one-folder).

    python installer/build.py --mode both            # dist/onefile/, dist/onedir/agent-kit/
    python installer/build.py --mode onedir --cache  # reuse a build of the same sources

Needs the desktop agent's dependencies and PyInstaller (``pip install -e '.[build]'``) and, on
Linux, ``libportaudio2`` (bundled into the binary). With ``--cache`` the result lives in a
directory keyed by a hash of everything that goes into the binary (sources, spec, installed
package versions, the Python and PortAudio it bundles), so a second build of the same sources is
free; tests and bench/ use that, CI passes ``--fresh``. See docs/packaging.md.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "installer" / "agent-kit.spec"
MODES = ("onefile", "onedir")
EXE_NAME = "agent-kit.exe" if sys.platform == "win32" else "agent-kit"
DEFAULT_CACHE = Path(os.environ.get("AGENT_KIT_BUILD_CACHE")
                     or Path(tempfile.gettempdir()) / "agent-kit-frozen")
# What goes into the binary: a change to any of these makes a new cache key.
_SOURCE_PARTS = ("agent_kit", "probes", "installer/agent-kit.spec", "installer/agent_kit_entry.py",
                 "installer/rthooks", "installer/hooks", "pyproject.toml")


class BuildError(RuntimeError):
    """PyInstaller failed or a prerequisite is missing; the message says which."""


@dataclass(frozen=True)
class FrozenBuild:
    mode: str
    executable: Path      # the agent-kit binary to run
    artifact: Path        # what ships: the binary (onefile) or its folder (onedir)
    build_s: float        # 0.0 when reused from the cache
    reused: bool


def _source_files() -> Iterator[Path]:
    for part in _SOURCE_PARTS:
        path = ROOT / part
        if path.is_file():
            yield path
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                rel = file.relative_to(ROOT).as_posix()
                if (file.is_file() and "__pycache__" not in file.parts
                        and not rel.startswith("agent_kit/center/") and file.suffix != ".pyc"):
                    yield file


def source_key() -> str:
    """Hash of the sources, the spec, the installed packages and the libraries bundled."""
    digest = hashlib.sha256()
    for file in _source_files():
        digest.update(file.relative_to(ROOT).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    dists = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()
                   if d.metadata["Name"])
    digest.update("\n".join(dists).encode())
    digest.update(f"{sys.version} {sys.platform} {sys.executable}".encode())
    for lib in ("/usr/lib/x86_64-linux-gnu/libportaudio.so.2",):
        with contextlib.suppress(OSError):
            st = os.stat(lib)
            digest.update(f"{lib} {st.st_size} {st.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _paths(mode: str, out_dir: Path) -> tuple[Path, Path]:
    if mode == "onefile":
        exe = out_dir / "onefile" / EXE_NAME
        return exe, exe
    folder = out_dir / "onedir" / "agent-kit"
    return folder / EXE_NAME, folder


def build(mode: str, out_dir: Path, *, clean: bool = False) -> FrozenBuild:
    """Run PyInstaller on the spec; the result goes to ``out_dir/<mode>/``."""
    if mode not in MODES:
        raise BuildError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    try:
        import PyInstaller  # noqa: F401  (only checks that it is installed)
    except ImportError:
        raise BuildError("PyInstaller is not installed: pip install -e '.[build]'") from None
    dist = out_dir / mode
    work = out_dir / f"work-{mode}"
    env = {**os.environ, "AGENT_KIT_BUILD_MODE": mode, "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "PyInstaller", str(SPEC), "--noconfirm", "--log-level", "WARN",
           "--distpath", str(dist), "--workpath", str(work)]
    if clean:
        cmd.append("--clean")
    shutil.rmtree(dist, ignore_errors=True)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    shutil.rmtree(work, ignore_errors=True)
    exe, artifact = _paths(mode, out_dir)
    if proc.returncode != 0 or not exe.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise BuildError(f"PyInstaller ({mode}) failed with exit code {proc.returncode}:\n{tail}")
    return FrozenBuild(mode=mode, executable=exe, artifact=artifact, build_s=elapsed, reused=False)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One builder per cache entry at a time (a test and a benchmark may race)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        if sys.platform != "win32":
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def cached_build(mode: str, cache_root: Path = DEFAULT_CACHE, *,
                 fresh: bool = False) -> FrozenBuild:
    """The build for the current sources from ``cache_root/<key>/``, building it if needed."""
    entry = cache_root / source_key()
    with _locked(entry):
        exe, artifact = _paths(mode, entry)
        done = entry / f"{mode}.done"
        if not fresh and done.is_file() and exe.is_file():
            return FrozenBuild(mode=mode, executable=exe, artifact=artifact, build_s=0.0,
                               reused=True)
        done.unlink(missing_ok=True)
        result = build(mode, entry, clean=fresh)
        done.write_text(f"{result.build_s:.1f}\n")
        return result


def artifact_size(build_: FrozenBuild) -> int:
    """Bytes of what ships (the file, or the whole folder; symlinks inside count once)."""
    if build_.artifact.is_file():
        return build_.artifact.stat().st_size
    return sum(f.lstat().st_size for f in build_.artifact.rglob("*")
               if f.is_file() and not f.is_symlink())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the frozen agent-kit desktop binary.")
    parser.add_argument("--mode", choices=(*MODES, "both"), default="both")
    parser.add_argument("--out", type=Path, default=ROOT / "dist",
                        help="output folder without --cache (default: dist/)")
    parser.add_argument("--cache", action="store_true",
                        help="reuse/keep builds keyed by source hash under --cache-dir")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--fresh", action="store_true",
                        help="ignore cached builds and PyInstaller's cache")
    args = parser.parse_args(argv)
    modes = MODES if args.mode == "both" else (args.mode,)
    for mode in modes:
        try:
            if args.cache:
                result = cached_build(mode, args.cache_dir, fresh=args.fresh)
            else:
                result = build(mode, args.out.resolve(), clean=args.fresh)
        except BuildError as exc:
            print(f"build.py: {exc}", file=sys.stderr)
            return 1
        how = "reused" if result.reused else f"built in {result.build_s:.0f} s"
        print(f"{mode}: {result.executable} ({artifact_size(result) / 1e6:.1f} MB, {how})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
