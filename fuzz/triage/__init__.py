"""Triage of saved fuzzing cases: list, show, reduce, repro, recheck, report.

Modules:

- ``cases``: reading case directories (through ``fuzz.campaign.store`` when present) with one-line errors;
- ``interp``: a small in-process graph interpreter (meta-tensor shape propagation, eager
  intermediate values) used by the reducer to keep candidates valid;
- ``reduce``: delta debugging over a ``Graph`` with a pluggable ``still_fails`` predicate;
- ``runner``: the real predicate, a persistent sandboxed child that replays candidates;
- ``listing``, ``recheck``, ``report``: the other subcommands' logic.
"""
