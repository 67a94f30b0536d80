"""Triage of saved fuzzing cases: list, show, reduce, repro, recheck, report.

Modules:

- ``cases``: finding case directories (each read into ``fuzz.campaign.case.Case``) with one-line errors;
- ``interp``: a small in-process graph interpreter (meta-tensor shape propagation, eager
  intermediate values) used by the reducer to keep candidates valid;
- ``reduce``: delta debugging over a ``Graph`` with a pluggable ``still_fails`` predicate;
- ``runner``: the real predicate, a persistent sandboxed child that replays candidates;
- ``listing``, ``show``, ``actions`` (reduce, recheck), ``report`` (``plots``): the subcommands' logic.
"""
