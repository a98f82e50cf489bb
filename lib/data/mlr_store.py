"""Where an MLR dataset lives on disk: immutable builds, switched atomically, never rewritten under a reader.

A job may train for hours on an MLR dataset while someone rebuilds the same folder (another rate set, a fixed
source). Rewriting the LR files in place would hand the job a mix of old and new images, and its metrics would be
recorded under the old manifest — wrong numbers that look right and are reused. So a build never touches what a
reader may be using:

    OUT/manifest.json  -> builds/<id>/manifest.json     the switch: one symlink, replaced atomically
    OUT/lr             -> builds/<id>/lr                for people browsing the folder
    OUT/builds/<id>/   manifest.json + lr/**.png        one complete build, never modified once published
    OUT/.build.lock    serialises builders (filelock)

``<id>`` is the first 12 hex digits of the manifest's fingerprint (:func:`manifest_fingerprint`), the
``manifest_sha256`` every run records in its identity, so a run names the build it was made on.

* A builder (:func:`lib.data.mlr.build_mlr`) holds :func:`build_lock`, writes a complete build into a staging
  folder (:func:`staging_dir`) and :func:`publish`\\ es it: rename to ``builds/<id>``, switch the symlink, collect
  the builds no one uses. A build that fails half-way leaves the published one untouched.
* A reader (:func:`open_manifest`, used by :meth:`lib.data.MLRDataset.load`) resolves the switch once and holds a
  shared ``flock`` on that build's manifest for as long as the dataset object lives; every LR path it hands out
  lies in that build. Garbage collection takes the lock exclusively without waiting, so a build in use is never
  deleted; it goes at the next build after its readers end.
* Folders written by earlier versions of the workbook (a real ``manifest.json`` and ``lr/`` in ``OUT``) are read as
  they are, and reused as they are; only when they must be rebuilt are they moved into ``builds/`` and retired.

Locks are POSIX ``flock`` (local disks and NFS); where ``fcntl`` does not exist, builds are switched the same way
but old builds are never deleted.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; old builds are then kept
    fcntl = None

from ..utils.io import sha256_bytes

__all__ = ["MANIFEST_NAME", "BUILDS", "MLRBuildError", "manifest_fingerprint", "build_lock", "staging_dir", "publish",
           "open_manifest", "build_for"]

MANIFEST_NAME = "manifest.json"
BUILDS = "builds"
_LOCK = ".build.lock"


class MLRBuildError(RuntimeError):
    """An MLR dataset folder cannot be switched to a new build (the message says why and what to do)."""


def manifest_fingerprint(manifest: dict) -> str:
    """sha256 of the manifest's content apart from where the source lies: identifies the MLR dataset
    (configuration, every image's r, resolution and LR file hash, the splits) wherever it is stored."""
    content = {k: v for k, v in manifest.items() if k != "source"}
    content["source"] = {k: v for k, v in manifest["source"].items() if k != "root"}
    return sha256_bytes(json.dumps(content, sort_keys=True).encode())


# ----------------------------------------------------------------------------------------------- builders
@contextmanager
def build_lock(out_dir: Path, progress: bool = True):
    """Hold ``OUT/.build.lock`` (one builder per folder, on this machine or another sharing the disk); says when it
    waits for another build."""
    from filelock import FileLock, Timeout

    out_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out_dir / _LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if progress:
            print(f"[mlr] {out_dir}: another build of this folder is running; waiting for it ({out_dir / _LOCK})",
                  file=sys.stderr, flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def staging_dir(out_dir: Path) -> Path:
    """A new, empty folder under ``OUT/builds/`` to write a build into (removed by the next build if this one dies)."""
    d = out_dir / BUILDS / f".staging-{os.getpid()}-{secrets.token_hex(4)}"
    d.mkdir(parents=True)
    return d


def publish(out_dir: Path, stage: Path, manifest: dict, *, replace: bool = False) -> Path:
    """Make the complete build in ``stage`` the folder's current one; returns ``OUT/manifest.json``.

    Call under :func:`build_lock`. An existing build with the same fingerprint is kept if its files are intact and
    either ``replace`` is off (no ``--force``) or a reader holds it; otherwise it is set aside (and collected) and
    ``stage`` takes its place. A folder in the old layout is retired first (:func:`_retire_legacy`).
    """
    builds = out_dir / BUILDS
    final = builds / manifest_fingerprint(manifest)[:12]
    if final.is_dir() and _intact(final, manifest) and (not replace or _in_use(final)):
        _remove_build(stage)
    else:
        if final.exists():  # damaged, or replaced by --force: set aside (collected below), never reused
            os.rename(final, builds / f".replaced-{secrets.token_hex(4)}")
        os.rename(stage, final)
    _retire_legacy(out_dir)
    rel = Path(BUILDS) / final.name
    _switch(out_dir / MANIFEST_NAME, rel / MANIFEST_NAME)
    lr = out_dir / "lr"
    if (final / "lr").is_dir():
        _switch(lr, rel / "lr")
    elif lr.is_symlink():
        lr.unlink()
    _collect(builds, keep=final.name)
    return out_dir / MANIFEST_NAME


def _switch(link: Path, target: Path) -> None:
    """Point ``link`` at ``target`` (relative) atomically: a reader sees the old build or the new, never neither."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _intact(build: Path, manifest: dict) -> bool:
    """Whether ``build`` holds exactly ``manifest`` and LR files with the hashes it records."""
    try:
        if json.loads((build / MANIFEST_NAME).read_text()) != json.loads(json.dumps(manifest)):
            return False
        return all(sha256_bytes((build / im["lr"]).read_bytes()) == im.get("lr_sha256")
                   for im in manifest["images"] if im.get("lr"))
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _retire_legacy(out_dir: Path) -> None:
    """Move a real ``manifest.json`` / ``lr/`` (the layout before builds) into ``builds/`` to be collected.

    A job of this version reading that manifest holds its lock: then the folder cannot be switched without
    pulling its images away, and the build stops with :class:`MLRBuildError`.
    """
    manifest, lr = out_dir / MANIFEST_NAME, out_dir / "lr"
    old = [p for p in (manifest, lr) if (p.exists() or p.is_symlink()) and not p.is_symlink()]
    if not old:
        return
    dest = out_dir / BUILDS / f".legacy-{secrets.token_hex(4)}"
    dest.mkdir(parents=True)
    if manifest in old:
        with open(manifest, "rb") as fh:
            if not _try_exclusive(fh):
                dest.rmdir()
                raise MLRBuildError(
                    f"{manifest} is in use by a running job (a training run or a notebook kernel holds it open), and this "
                    "folder was made by an earlier version of the workbook, whose LR images cannot be kept for that job "
                    "while the folder is rebuilt; rebuild once that job has ended")
            os.rename(manifest, dest / MANIFEST_NAME)
    if lr in old:
        os.rename(lr, dest / "lr")


def _collect(builds: Path, keep: str) -> None:
    """Remove every build but ``keep`` that no reader holds (and what killed builds left); never waits."""
    if fcntl is None:
        return
    for d in sorted(builds.iterdir()):
        if d.name == keep or d.is_symlink() or not d.is_dir():
            continue
        m = d / MANIFEST_NAME
        if not m.is_file():
            _remove_build(d)  # a killed build's staging folder (we hold the build lock: no other builder runs)
            continue
        with open(m, "rb") as fh:
            if _try_exclusive(fh):
                _remove_build(d)


def _remove_build(d: Path) -> None:
    """Delete what a build writes (its manifest, ``lr/**.png``, killed writes' ``*.tmp``) and the folders left empty;
    a file someone else put there is kept, and with it the folders above it."""
    for f in sorted(d.rglob("*"), reverse=True):
        if f.is_symlink() or f.is_file():
            if f.name == MANIFEST_NAME and f.parent == d or f.suffix in (".png", ".tmp"):
                f.unlink()
        elif f.is_dir() and not any(f.iterdir()):
            f.rmdir()
    if d.is_dir() and not any(d.iterdir()):
        d.rmdir()


def _in_use(build: Path) -> bool:
    """Whether a reader holds ``build`` (its manifest's shared lock)."""
    try:
        with open(build / MANIFEST_NAME, "rb") as fh:
            return fcntl is not None and not _try_exclusive(fh)
    except OSError:
        return False


def _try_exclusive(fh) -> bool:
    if fcntl is None:
        return False
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


# ------------------------------------------------------------------------------------------------ readers
def open_manifest(path: Path):
    """``(build folder, manifest text, handle)`` of the build ``path`` (``OUT/manifest.json`` or a manifest file)
    points at now. The handle holds a shared lock on that build until it is closed (or the process ends), so the
    build is never collected while it is read. Raises ``FileNotFoundError`` when there is no manifest."""
    for attempt in range(5):
        real = path.resolve()
        try:
            fh = open(real, "rb")
        except FileNotFoundError:
            if attempt < 4 and path.is_symlink():  # switched and collected between resolve and open: look again
                continue
            raise
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_SH)  # waits only while a collector is deleting this build
            except OSError:  # a file system without locks: read without (old builds may then be collected)
                pass
        try:
            same = os.stat(real).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # collected (or retired) while we waited for the lock
            fh.close()
            continue
        text = fh.read().decode("utf-8")
        return real.parent, text, fh
    raise MLRBuildError(f"{path}: the dataset was switched to another build five times while being opened; retry")


def build_for(manifest_path: Path, fingerprint: str) -> Path | None:
    """The manifest of the build of ``manifest_path``'s folder whose fingerprint is ``fingerprint``, if it is still
    on disk (a run made before the folder was rebuilt finds the data it was made on)."""
    if not fingerprint:
        return None
    m = Path(manifest_path).parent / BUILDS / fingerprint[:12] / MANIFEST_NAME
    return m if m.is_file() else None
