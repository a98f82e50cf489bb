"""Use trained runs outside the tables: load a run folder, match query images to gallery images with it.

* :mod:`.loading` — :func:`load_run` (a run folder → its configuration and trained modules, dependencies
  included) and :func:`find_runs` (the variant links of a profile's runs);
* :mod:`.matcher` — :class:`Matcher`: what a method's output does at test time (embed queries, embed the gallery,
  their distance; restorations where there is an SR module), built by the method's ``matcher`` hook.

Used by the explorer (notebook 13), the resolution sweep (notebook 14), ``python -m lib.rank`` and
``python -m lib.features export``.
"""

from .loading import LoadedRun, OutputRun, RunEntry, RunLoadError, by_label, find_runs, load_run, output_runs
from .matcher import EmbedderMatcher, Matcher, QuerySource

__all__ = ["LoadedRun", "OutputRun", "RunEntry", "RunLoadError", "by_label", "find_runs", "load_run", "output_runs", "Matcher",
           "EmbedderMatcher", "QuerySource"]
