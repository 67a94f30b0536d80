"""Which gradients the oracle leaves unjudged (fuzz.campaign.sensitivity.gradient_blockers), on real
decompositions: a product of Householder reflectors is judged by its output's conditioning."""

import torch

from fuzz.campaign.sensitivity import gradient_blockers
from fuzz.ir.graph import Graph, Node


def _householder_graph():
    g = Graph()
    g.add_tensor([6, 4], "complex64", "input", name="v")
    g.add_tensor([4], "complex64", "input", name="tau")
    g.add_tensor([6, 4], "complex64", name="q")
    g.add_node(Node("n0", "aten::linalg_householder_product", "aten", [{"ref": "v"}, {"ref": "tau"}], {}, ["q"]))
    g.outputs = ["q"]
    return g


def test_reflectors_geqrf_made_are_judged_and_a_far_from_unitary_product_is_not():
    g = _householder_graph()
    a = torch.randn(6, 4, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    v, tau = torch.geqrf(a)
    env = {"v": v, "tau": tau, "q": torch.linalg.householder_product(v, tau)}
    assert gradient_blockers(g, env) == {}  # Q of a QR: unitary columns, well conditioned
    big = tau * 40  # no reflector's own scale: the product amplifies and cancels
    env = {"v": v, "tau": big, "q": torch.linalg.householder_product(v, big)}
    got = gradient_blockers(g, env)
    assert "ill-conditioned product of reflectors" in got["q"]
    assert torch.linalg.cond(env["q"].to(torch.complex128)) > 1e4
