"""Command line: ``python -m lib.mlr DATASET ROOT OUT [--seed N ...]`` (see :mod:`lib.data.mlr_build`)."""

from lib.data.mlr_build import main

if __name__ == "__main__":
    raise SystemExit(main())
