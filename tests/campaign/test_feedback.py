"""Compiler feedback per test (fuzz.campaign.feedback) and compiler knobs (fuzz.campaign.knobs),
on real torch.compile calls in this process."""

import torch

from fuzz.campaign import feedback, knobs


def _model():
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.LayerNorm(16)).eval()


def _compile(m, x):
    torch._dynamo.reset()
    with torch.no_grad():
        return torch.compile(m, backend="inductor")(x)


def test_buckets_are_afls():
    assert [feedback.bucket(n) for n in (1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 127, 128, 10**6)] == [
        "1", "2", "3", "4-7", "4-7", "8-15", "8-15", "16-31", "16-31", "32-127", "32-127", "128+", "128+"]


def test_a_real_compile_reports_lowerings_kernels_and_fusions_and_off_reports_nothing():
    import torch._inductor.config as cfg

    m, x = _model(), torch.randn(4, 8)
    with cfg.patch(fx_graph_cache=False), feedback.observe("counters") as obs:
        _compile(m, x)
    names = {f.rsplit(":", 1)[0] for f in obs.features}
    assert "lower:aten.relu.default" in names, sorted(names)
    assert "metric:generated_kernel_count" in names and "kernel:cpp_fused" in names, sorted(names)
    assert any(n.startswith("fuse:") for n in names), sorted(names)  # the scheduler fused something
    assert "frames:ok" in names and "extern:addmm" in names, sorted(names)
    assert all(f.rsplit(":", 1)[1] in {"1", "2", "3", "4-7", "8-15", "16-31", "32-127", "128+"} for f in obs.features)
    assert 0 < obs.feedback_ms < 1000
    event = obs.to_event()
    assert event["features"] == obs.features and "coverage_lines" not in event
    with feedback.observe("off") as off:
        _compile(m, torch.randn(5, 8))
    assert off.features == [] and off.counts == {}
    # outside observe() the hooks record nothing
    _compile(m, torch.randn(6, 8))
    assert feedback.HOOKS.current is None


def test_a_knob_changes_what_the_compiler_reports_and_is_restored():
    import torch._inductor.config as cfg

    m, x = _model(), torch.randn(4, 8)
    before = cfg.max_fusion_size
    with cfg.patch(fx_graph_cache=False), feedback.observe("counters") as plain:
        _compile(m, x)
    with cfg.patch(fx_graph_cache=False), feedback.observe("counters") as obs, \
            knobs.applied(knobs.settings_of(["no_fusion"])):
        assert cfg.max_fusion_size == 1
        out = _compile(m, x)
    assert cfg.max_fusion_size == before
    assert any(f.startswith("nofuse:exceeds max fusion") for f in obs.features), obs.features
    assert not any(f.startswith("fuse:") for f in obs.features), obs.features
    assert set(obs.features) != set(plain.features)
    with torch.no_grad():
        torch.testing.assert_close(out, m(x))


def test_every_knob_names_real_settings():
    import importlib

    roots = {"inductor": "torch._inductor.config", "dynamo": "torch._dynamo.config", "assay": "fuzz.campaign.knobs"}
    for name, settings in knobs.KNOBS.items():
        for key in settings:
            root, _, path = key.partition(".")
            obj = importlib.import_module(roots[root])
            for part in path.split("."):
                assert hasattr(obj, part), (name, key)
                obj = getattr(obj, part)
    old = knobs.set_knobs(knobs.settings_of(["cpp_wrapper", "scalar"]))
    import torch._inductor.config as cfg

    assert cfg.cpp_wrapper is True and cfg.cpp.simdlen == 1
    knobs.set_knobs({"restore": old})
    assert cfg.cpp_wrapper is False and cfg.cpp.simdlen is None


def test_coverage_mode_traces_compiler_lines():
    import torch._inductor.config as cfg

    m, x = _model(), torch.randn(3, 8)
    with cfg.patch(fx_graph_cache=False), feedback.observe("coverage", lines=True) as obs:
        _compile(m, x)
    assert obs.lines and all(line.startswith(feedback.COVERAGE_DIRS) for line in obs.lines)
    assert any(line.startswith("torch/_inductor/scheduler.py:") for line in obs.lines)
    assert obs.features  # the counters too


def test_a_setting_this_torch_lacks_is_left_out():
    import torch._inductor.config as cfg

    old = knobs.set_knobs({"future": {"inductor.no_such_setting": 1, "inductor.cpp.no_such": 2,
                                      "inductor.split_reductions": False}})
    assert old == {"inductor.split_reductions": True} and cfg.split_reductions is False
    knobs.set_knobs({"restore": old})
    assert cfg.split_reductions is True


def test_the_optimus_knobs_name_real_passes_and_make_them_fire():
    from torch._inductor.fx_passes import group_batch_fusion, post_grad, pre_grad

    # a pass name this torch lacks would be a KeyError inside every compile under the knob
    assert set(knobs.OPTIMUS_PRE_GRAD) <= set(pre_grad.PRE_GRAD_PATTERNS) | set(group_batch_fusion.PRE_GRAD_FUSIONS)
    assert set(knobs.OPTIMUS_POST_GRAD) <= set(post_grad.POST_GRAD_PATTERNS) | set(group_batch_fusion.POST_GRAD_FUSIONS)
    import torch._inductor.config as cfg

    def split_cat(x, w):
        a = torch.nn.functional.linear(x, w)
        parts = torch.split(a, 2, dim=1)
        return torch.stack(torch.unbind(torch.cat([parts[1], parts[0]], dim=1), 1), 1).relu()

    x, w = torch.randn(8, 16), torch.randn(4, 16)
    fired = {}
    for name in ("", "optimus_pre_grad", "optimus_post_grad"):
        torch._dynamo.reset()
        with cfg.patch(fx_graph_cache=False), feedback.observe("counters") as obs, \
                knobs.applied(knobs.settings_of([name] if name else [])):
            out = torch.compile(split_cat)(x, w)
        torch.testing.assert_close(out, split_cat(x, w))
        fired[name] = {f.rsplit(":", 1)[0] for f in obs.features if "normalization" in f}
    assert fired[""] == set(), fired
    assert fired["optimus_pre_grad"] and fired["optimus_post_grad"] and fired["optimus_pre_grad"] != fired["optimus_post_grad"], fired


def test_a_pass_name_this_torch_lacks_is_left_out_and_the_compile_runs():
    """A case recorded under another torch may name an FX pass this one does not have: set as
    recorded, every compile under the knob raises KeyError (a false crash); set_knobs drops it and
    keeps the names this torch knows, and restores the old value after."""
    import torch._inductor.config as cfg

    recorded = {"optimus_post_grad": {"inductor.post_grad_fusion_options": {
        "normalization_aten_pass": {}, "pass_from_a_later_torch": {}}}}
    before = dict(cfg.post_grad_fusion_options)
    torch._dynamo.reset()
    with cfg.patch(fx_graph_cache=False), knobs.applied(recorded):
        assert set(cfg.post_grad_fusion_options) == {"normalization_aten_pass"}
        out = torch.compile(lambda x: torch.split(x, 2)[1].relu())(torch.randn(4, 3))
    assert out.shape == (2, 3) and cfg.post_grad_fusion_options == before
    with cfg.patch(post_grad_fusion_options={"pass_from_a_later_torch": {}}, fx_graph_cache=False):
        torch._dynamo.reset()  # what the filter prevents: the compile itself fails
        try:
            torch.compile(lambda x: x.relu() + 1)(torch.randn(3))
        except Exception as exc:  # noqa: BLE001 - InductorError wrapping the KeyError
            assert "pass_from_a_later_torch" in str(exc)
        else:
            raise AssertionError("an unknown pass name compiled: the filter tests nothing")


def test_the_auto_chunker_and_partitioned_scatter_knobs_make_their_rewrites_fire():
    """Both rewrites are off by default in torch 2.13: under their knobs a linear before a
    cross-entropy, differentiated, is chunked (``metrics.num_auto_chunking``) and an accumulating
    ``index_put`` of 4096 indices is partitioned (``partitioned_scatter_applied``); gradients and
    values agree with eager, and nothing fires without the knobs."""
    import torch._inductor.config as cfg
    from torch._dynamo.utils import counters
    from torch._inductor import metrics

    def loss(x, w, t):
        return torch.nn.functional.cross_entropy(x @ w, t)

    def scatter(acc, i, v):
        return torch.ops.aten.index_put(acc, [i], v, True)

    x, w = torch.randn(64, 16, requires_grad=True), torch.randn(16, 512, requires_grad=True)
    t = torch.randint(0, 512, (64,))
    acc, i, v = torch.zeros(64), torch.randint(0, 64, (4096,)), torch.randn(4096)
    fired = {}
    for name in ("", "auto_chunker", "partitioned_scatter"):
        torch._dynamo.reset()
        metrics.reset()
        counters.clear()
        with cfg.patch(fx_graph_cache=False), knobs.applied(knobs.settings_of([name] if name else [])):
            grads = torch.autograd.grad(torch.compile(loss)(x, w, t), (x, w))
            summed = torch.compile(scatter)(acc, i, v)
        for got, want in zip(grads, torch.autograd.grad(loss(x, w, t), (x, w))):
            torch.testing.assert_close(got, want)
        torch.testing.assert_close(summed, scatter(acc, i, v))
        fired[name] = (metrics.num_auto_chunking, counters["inductor"]["partitioned_scatter_applied"])
    assert fired == {"": (0, 0), "auto_chunker": (1, 0), "partitioned_scatter": (0, 1)}, fired
