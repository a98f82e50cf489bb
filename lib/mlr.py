"""Command line: ``python -m lib.mlr DATASET ROOT OUT [--seed N ...]`` (see :mod:`lib.data.mlr`)."""

from lib.data.mlr import main

if __name__ == "__main__":
    raise SystemExit(main())
