"""Where an MLR dataset lives on disk: immutable builds, switched atomically, never rewritten under a reader.

A job may train for hours on an MLR dataset while someone rebuilds the same folder (another rate set, a fixed
source). Rewriting the LR files in place would hand the job a mix of old and new images, and its metrics would be
recorded under the old manifest — wrong numbers that look right and are reused. So a build never touches what a
reader may be using:

    OUT/manifest.json  -> builds/<id>/manifest.json     the switch: one symlink, replaced atomically
    OUT/builds/<id>/   manifest.json + lr/**.png        one complete build, never modified once published
    OUT/.build.lock    serialises builders (filelock)

There is deliberately no ``OUT/lr``: a reader that resolved nothing (a process of an earlier version reading
``OUT/lr/…`` directly) must find its files gone — an error — never the new build's images under the old names.

``<id>`` is the first 12 hex digits of the manifest's fingerprint (:func:`manifest_fingerprint`), the
``manifest_sha256`` every run records in its identity, so a run names the build it was made on.

* A builder (:func:`lib.data.mlr_build.build_mlr`) holds :func:`build_lock`, writes a complete build into a staging
  folder (:func:`staging_dir`) and :func:`publish`\\ es it: rename to ``builds/<id>``, switch the symlink, collect
  the builds no one uses. A build that fails half-way leaves the published one untouched.
* A reader (:func:`open_manifest`, used by :meth:`lib.data.MLRDataset.load`) resolves the switch once and holds a
  shared ``flock`` on that build's manifest for as long as the dataset object lives; every LR path it hands out
  lies in that build. Garbage collection takes the lock exclusively without waiting, so a build in use is never
  deleted; it goes at the next build after its readers end.
* Folders written by earlier versions of the workbook (a real ``manifest.json`` and ``lr/`` in ``OUT``) are read as
  they are, and reused as they are; only when they must be rebuilt are they moved into ``builds/`` and retired.

Locks are ``flock``. On a local file system each open file holds its own lock. On NFS, Linux emulates ``flock`` with
POSIX locks, which a process drops when it closes *any* descriptor of the file: a build may then be collected while
a job still reads it, and that job stops with a missing-file error — never reads other images. Where locking is not
available (``fcntl`` missing, or the file system refuses locks), old builds are kept rather than risked.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import sys
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; old builds are then kept
    fcntl = None

from ..utils.io import sha256_bytes

__all__ = ["MANIFEST_NAME", "BUILDS", "MLRBuildError", "manifest_fingerprint", "lr_mismatch", "build_lock",
           "staging_dir", "check_legacy", "publish", "open_manifest", "build_for"]

MANIFEST_NAME = "manifest.json"
BUILDS = "builds"
_LOCK = ".build.lock"


class MLRBuildError(RuntimeError):
    """An MLR dataset folder cannot be switched to a new build (the message says why and what to do)."""


def manifest_fingerprint(manifest: dict) -> str:
    """sha256 of the manifest's content apart from where the source lies: identifies the MLR dataset
    (configuration, every image's r, resolution and LR file hash, the splits) wherever it is stored.

    The record of the split file the splits came from (``split_file``: its path, hash, entries) is provenance, as the
    source's root is: the splits it gave are in the fingerprint, the record is not (CUHK03 builds from a split file made
    before it was recorded keep their fingerprint, and so their runs)."""
    content = {k: v for k, v in manifest.items() if k not in ("source", "split_file")}
    content["source"] = {k: v for k, v in manifest["source"].items() if k != "root"}
    return sha256_bytes(json.dumps(content, sort_keys=True).encode())


def lr_mismatch(build: Path, images: list[dict], indices=None) -> tuple[Path, str, str] | None:
    """The first synthesised LR file of ``images`` (manifest entries; only ``indices`` if given) whose content is not
    the ``lr_sha256`` it records: ``(path, expected, found)`` with ``found`` ``"missing"`` / ``"unreadable: …"``, or
    ``None`` when all match. Entries without a recorded hash are not checked (the caller decides what that means)."""
    for j in range(len(images)) if indices is None else indices:
        im = images[j]
        if not im.get("lr") or not im.get("lr_sha256"):
            continue
        path = build / im["lr"]
        try:
            found = sha256_bytes(path.read_bytes())
        except FileNotFoundError:
            found = "missing"
        except OSError as e:
            found = f"unreadable: {e}"
        if found != im["lr_sha256"]:
            return path, im["lr_sha256"], found
    return None


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
        if replace:
            print(f"[mlr] {final}: identical and intact, and in use by a running job: kept as it is (not rewritten)",
                  file=sys.stderr, flush=True)
        _remove_build(stage)
    else:
        if final.exists():  # damaged, or replaced by --force: set aside (collected below), never reused
            os.rename(final, builds / f".replaced-{secrets.token_hex(4)}")
        os.rename(stage, final)
    _retire_legacy(out_dir)
    _switch(out_dir / MANIFEST_NAME, Path(BUILDS) / final.name / MANIFEST_NAME)
    _collect(builds, keep=final.name)
    for f in out_dir.glob(f".{MANIFEST_NAME}.*.tmp"):  # what killed switches (and the old in-place writes) left
        f.unlink()
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
    except (OSError, ValueError):
        return False
    return lr_mismatch(build, manifest["images"]) is None


_IN_USE = ("{manifest} is held by a running job (a training run, or a notebook kernel: `ds.close()` there releases "
           "it), and this folder was made by an earlier version of the workbook, whose LR images cannot be kept for that "
           "job while the folder is rebuilt; rebuild once it has ended (nothing was changed)")


def check_legacy(out_dir: Path) -> None:
    """Fail early, before anything is synthesised, when ``OUT`` holds a manifest of the old layout that a reader of
    this version holds (:func:`_retire_legacy` would refuse it at the end)."""
    manifest = out_dir / MANIFEST_NAME
    if manifest.is_file() and not manifest.is_symlink():
        with _lockable(manifest) as fh:
            if _try_exclusive(fh) is False:
                raise MLRBuildError(_IN_USE.format(manifest=manifest))


def _retire_legacy(out_dir: Path) -> None:
    """Move a real ``manifest.json`` / ``lr/`` (the layout before builds) into ``builds/.legacy-*`` to be collected.

    The manifest is hard-linked there (same file, so a reader's lock on it is still seen by :func:`_collect`) and
    stays at ``OUT/manifest.json`` until the switch replaces it, so a reader never finds the folder without one. Its
    ``lr/`` is moved: a reader of the old layout (which resolved nothing) then fails on a missing file instead of
    reading the new build. A reader of this version holding the old manifest makes this an :class:`MLRBuildError`.
    """
    manifest, lr = out_dir / MANIFEST_NAME, out_dir / "lr"
    real_manifest = manifest.is_file() and not manifest.is_symlink()
    real_lr = lr.is_dir() and not lr.is_symlink()
    if not (real_manifest or real_lr):
        return
    dest = out_dir / BUILDS / f".legacy-{secrets.token_hex(4)}"
    dest.mkdir(parents=True)
    if real_manifest:
        with _lockable(manifest) as fh:
            if _try_exclusive(fh) is False:
                dest.rmdir()
                raise MLRBuildError(_IN_USE.format(manifest=manifest))
            try:
                os.link(manifest, dest / MANIFEST_NAME)
            except OSError:  # a file system without hard links: a copy (the old layout's readers held no lock)
                (dest / MANIFEST_NAME).write_bytes(manifest.read_bytes())
    if real_lr:
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
        with _lockable(m) as fh:
            if _try_exclusive(fh) is True:  # no reader (False), or locks unknown here (None): kept
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
    """Whether a reader may hold ``build`` (its manifest's shared lock; ``True`` too where locks cannot be taken)."""
    try:
        with _lockable(build / MANIFEST_NAME) as fh:
            return _try_exclusive(fh) is not True
    except OSError:
        return False


def _lockable(path: Path):
    """``path`` opened so that an exclusive lock can be taken on it: for writing where allowed (NFS grants exclusive
    locks only on files open for writing), else for reading. Nothing is written."""
    try:
        return open(path, "r+b")
    except PermissionError:
        return open(path, "rb")


def _try_exclusive(fh) -> bool | None:
    """Take an exclusive lock without waiting: ``True`` taken, ``False`` someone holds the file, ``None`` locks are not
    available here (no ``fcntl``, or the file system refuses them)."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as e:
        return False if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) else None


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
            now, held = os.stat(real), os.fstat(fh.fileno())
            same = (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)
        except FileNotFoundError:
            same = False
        if not same:  # collected (or retired) while we waited for the lock
            fh.close()
            continue
        try:
            text = fh.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            fh.close()
            raise ValueError(f"MLR manifest {path} cannot be read as UTF-8 JSON text ({e})") from None
        return real.parent, text, fh
    raise MLRBuildError(f"{path}: the dataset was switched to another build five times while being opened; retry")


def build_for(manifest_path: Path, fingerprint: str) -> Path | None:
    """The manifest of the build of ``manifest_path``'s folder whose fingerprint is ``fingerprint``, if it is still
    on disk (a run made before the folder was rebuilt finds the data it was made on)."""
    if not isinstance(fingerprint, str) or not re.fullmatch(r"[0-9a-f]{12,64}", fingerprint):
        return None  # none recorded, or not a sha256 (a metrics.json from elsewhere): never part of a path
    m = Path(manifest_path).parent / BUILDS / fingerprint[:12] / MANIFEST_NAME
    return m if m.is_file() else None
