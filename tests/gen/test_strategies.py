"""The Hypothesis strategy: valid models drawn through Hypothesis data, replayed and shrunk."""

import torch
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.database import InMemoryExampleDatabase

from fuzz.gen.ruleset import RuleSet
from fuzz.strategies import GeneratedModel, models

from hand_rules import fixture_rules

RULES = RuleSet(fixture_rules())
QUICK = dict(deadline=None, suppress_health_check=list(HealthCheck), print_blob=False)


@settings(max_examples=10, **QUICK)
@given(models(max_nodes=5, rules=RULES))
def test_drawn_models_run(m):
    assert isinstance(m, GeneratedModel)
    outs = m.run()
    assert [list(o.shape) for o in outs] == [m.graph.tensors[o].shape for o in m.graph.outputs]
    assert 1 <= len(m.graph.nodes) <= 5
    assert "class Model" in m.source


def _failing_property(db, seen, phases=tuple(Phase)):
    # No @seed here: Hypothesis does not save examples of seeded runs to the database.
    @settings(max_examples=60, database=db, phases=phases, **QUICK)
    @given(models(max_nodes=4, rules=RULES))
    def prop(m):
        seen.append(m.graph.dumps())
        # A "backend bug": any model that calls aten::log.
        assert "aten::log" not in m.ops

    return prop


def test_failure_is_found_shrunk_and_replayed():
    import json

    db = InMemoryExampleDatabase()
    seen: list[str] = []
    try:
        _failing_property(db, seen)()
    except AssertionError:
        pass
    else:
        raise AssertionError("Hypothesis found no falsifying model")
    falsifying = seen[-1]  # Hypothesis re-runs the shrunk example last
    assert '"aten::log"' in falsifying
    assert len(json.loads(falsifying)["nodes"]) <= 2  # shrunk towards the smallest such model
    # Replay only what the example database saved: the same model comes back, byte for byte.
    seen2: list[str] = []
    try:
        _failing_property(db, seen2, phases=(Phase.reuse,))()
    except AssertionError:
        pass
    else:
        raise AssertionError("the saved failure did not replay")
    assert falsifying in seen2


def test_same_hypothesis_seed_same_models():
    runs = []
    for _ in range(2):
        got = []

        @seed(7)
        @settings(max_examples=5, database=None, phases=[Phase.generate], **QUICK)
        @given(models(max_nodes=4, rules=RULES))
        def collect(m):
            got.append((m.graph.dumps(), [t.clone() for t in m.inputs]))

        collect()
        runs.append(got)
    assert [g for g, _ in runs[0]] == [g for g, _ in runs[1]]
    for (_, a), (_, b) in zip(*runs):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
