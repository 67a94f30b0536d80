"""Trace collection: record valid and invalid operator calls from torch's own test databases.

Sources (see docs/traces.md): torch's OpInfo database (``function`` records), its
ModuleInfo database (``module`` records), the aten calls those samples make as
seen by a ``TorchDispatchMode`` (``aten`` records), OpInfo error inputs, and
one-change mutants of all of these, run on meta tensors where the operator
supports them. ``collect`` builds a corpus directory; ``corpus_stats`` and
``load_corpus`` read one back.
"""

from fuzz.tracing.collect import collect, default_out_dir, select_tasks
from fuzz.tracing.stats import compute_stats, corpus_files, corpus_stats, load_corpus

__all__ = ["collect", "default_out_dir", "select_tasks", "compute_stats", "corpus_files",
           "corpus_stats", "load_corpus"]
