"""The workbook's Jupyter kernel: its own kernelspec name, so installing the workbook never shadows ``python3``.

Every notebook names :data:`KERNEL_NAME` in its metadata (``scripts/make_notebooks.py``), the runner
(:func:`lib.workbook.run_notebook`, papermill) starts it, and nbval (``make test``) starts the kernel the notebook
names. ``make setup`` installs it into the environment's prefix (``.venv/share/jupyter/kernels/reid-workbook``); in
another environment (conda: ``environment.yml``) ``python -m lib.kernel`` does the same. The kernel runs the Python of
the environment it was installed from.

Command line::

    python -m lib.kernel            # install (or refresh) the kernelspec into sys.prefix, print where
    python -m lib.kernel --check    # exit 1 with the install command when it is missing
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["KERNEL_NAME", "KERNEL_DISPLAY_NAME", "KernelMissingError", "kernel_spec_dir", "check_kernel",
           "install_kernel", "kernel_manager_with_env", "main"]

#: The kernelspec name the notebooks and the runner use (not ``python3``: that is the user's default kernel).
KERNEL_NAME = "reid-workbook"
#: The name JupyterLab shows in its launcher and kernel picker.
KERNEL_DISPLAY_NAME = "Python 3 (reid workbook)"
INSTALL_HINT = "`make setup`, or `python -m lib.kernel` in the environment that has the workbook installed"


class KernelMissingError(RuntimeError):
    """The workbook's kernelspec is not installed where Jupyter looks."""


def kernel_spec_dir(name: str = KERNEL_NAME) -> Path | None:
    """The folder of kernelspec ``name`` that Jupyter would use (any of its kernel paths), or ``None``."""
    from jupyter_client.kernelspec import KernelSpecManager

    found = KernelSpecManager().find_kernel_specs().get(name)
    return Path(found) if found else None


def check_kernel(name: str = KERNEL_NAME) -> Path:
    """The kernelspec folder of ``name``; :class:`KernelMissingError` naming the kernels that exist and the command
    that installs it when it is missing (raised before papermill would start anything)."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    if name not in specs:
        raise KernelMissingError(f"Jupyter kernel {name!r} is not installed (kernels found: "
                                 f"{', '.join(sorted(specs)) or 'none'}); install it with {INSTALL_HINT}")
    return Path(specs[name])


def kernel_manager_with_env(env: dict[str, str]) -> type:
    """A kernel-manager class (for papermill's ``kernel_manager_class=``) whose kernels start with ``env`` on top of
    this process's environment, read when the kernel starts.

    The variables travel with the kernel it starts rather than through ``os.environ``, which is one per process:
    two notebooks started at once from two threads (:func:`lib.workbook.run_notebook`) each get their own progress
    file (:data:`lib.utils.progress.ENV`), whatever the other thread set meanwhile.
    """
    from jupyter_client import AsyncKernelManager

    pinned = {str(k): str(v) for k, v in env.items()}

    class _KernelManagerWithEnv(AsyncKernelManager):
        async def _async_pre_start_kernel(self, **kw):
            kw["env"] = {**kw.get("env", os.environ), **pinned}
            return await super()._async_pre_start_kernel(**kw)

    _KernelManagerWithEnv.pinned_env = pinned
    return _KernelManagerWithEnv


def install_kernel(prefix: str | None = None) -> Path:
    """Install the kernelspec into ``prefix`` (default: this environment's ``sys.prefix``) for this Python; returns
    its folder. Re-installing replaces it (e.g. after the environment moved)."""
    from ipykernel.kernelspec import install

    return Path(install(kernel_name=KERNEL_NAME, display_name=KERNEL_DISPLAY_NAME, prefix=prefix or sys.prefix))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lib.kernel", description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="only check that it is installed")
    p.add_argument("--prefix", default=None, help="install under this prefix (default: sys.prefix)")
    a = p.parse_args(argv)
    if a.check:
        try:
            print(check_kernel())
        except KernelMissingError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    print(install_kernel(a.prefix))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
