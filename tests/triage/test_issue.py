"""``assay triage issue``: a Markdown body in the torch.compile bug template, with a real
backend ablation (sandboxed repro runs), the float64 comparison and versions; the known-issues
file marks list, show, report and the issue."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from triage_helpers import chain_graph, make_case  # noqa: E402

from fuzz.cli import main  # noqa: E402


def test_issue_body_ablation_float64_versions_and_known_links(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASSAY_TEST_BACKENDS", "1")
    root = tmp_path / "run"
    g, t = chain_graph()
    make_case(root, "a1", g, t, backend="_perturb")
    case = json.loads((root / "a1" / "case.json").read_text())
    url = "https://github.com/pytorch/pytorch/issues/999999"
    (root / "known-issues.json").write_text(json.dumps({case["signature"]: {"url": url, "note": "wrong first element"}}))
    out = tmp_path / "bug.md"
    # ablation over three backends: one that computes right, the case's own, one that raises
    code = main(["triage", "issue", "a1", "--dir", str(root), "--out", str(out), "--backends", "_perturb_resized,_perturb,_raise",
                 "--timeout", "120"])
    _, err = capsys.readouterr()
    assert code == 0, err
    md = out.read_text()
    assert md.startswith("# torch.compile(backend='_perturb') gives wrong values for ")
    assert f"> Known: {url} (wrong first element)" in md
    for section in ("### 🐛 Describe the bug", "### Accuracy against float64", "### Backend ablation",
                    "### Compiler settings", "### Versions"):
        assert section in md, section
    assert "| `_perturb_resized` | passes (matches eager) |" in md
    assert "| `_perturb` | fails: the same failure |" in md
    assert "| `_raise` | fails differently" in md and "Not reproduced here" not in md
    assert "| float64 reference | 0.55 | 0 |" in md and "| compiled (_perturb) | 1.05 | 0.5 |" in md
    assert "cpu capability: " in md and "C++ compiler: " in md and "torch: " in md
    src = md.split("```python\n", 1)[1].split("```", 1)[0]
    compile(src, "repro.py", "exec")
    assert "import fuzz" not in src and "_INLINE" in src
    # the same link in list, show and the report
    assert main(["triage", "list", "--dir", str(root)]) == 0
    assert f"known: {url}" in capsys.readouterr().out
    assert main(["triage", "show", "a1", "--dir", str(root)]) == 0
    assert f"KNOWN ISSUE: {url}" in capsys.readouterr().out
    assert main(["triage", "report", "--dir", str(root), "--out", str(tmp_path / "r.md")]) == 0
    assert f"known: {url}" in (tmp_path / "r.md").read_text()


def test_a_bad_known_issues_file_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASSAY_TEST_BACKENDS", "1")
    root = tmp_path / "run"
    g, t = chain_graph()
    make_case(root, "a1", g, t, backend="_perturb")
    for text in ("{not json", "[1, 2]", '{"x": 3}'):
        (root / "known-issues.json").write_text(text)
        assert main(["triage", "list", "--dir", str(root)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "known-issues.json" in err
    assert main(["triage", "issue", "a1", "--dir", str(root), "--no-ablation", "--known", str(tmp_path / "nope.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_an_issue_says_when_its_own_backend_no_longer_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASSAY_TEST_BACKENDS", "1")
    root = tmp_path / "run"
    g, t = chain_graph()
    make_case(root, "ok", g, t, backend="_perturb_resized")  # saved as a mismatch; computes right here
    assert main(["triage", "issue", "ok", "--dir", str(root), "--backends", "_perturb_resized"]) == 0
    md = capsys.readouterr().out
    assert "| `_perturb_resized` | passes (matches eager) |" in md
    assert "**Not reproduced here with `_perturb_resized`**" in md


def test_an_issue_says_how_a_case_under_automatic_dynamic_was_compiled():
    """The knob is a compile argument, not a torch config: the issue text says dynamic=None."""
    from types import SimpleNamespace

    from fuzz.campaign import knobs
    from fuzz.triage.issue import _config_line

    auto = SimpleNamespace(graph={}, knobs={"automatic_dynamic": knobs.KNOBS["automatic_dynamic"]})
    assert "`dynamic=None`" in _config_line(auto) and "no `torch._dynamo.config`" in _config_line(auto)
    both = SimpleNamespace(graph={}, knobs={**auto.knobs, "freezing": knobs.KNOBS["freezing"]})
    assert "torch._inductor.config.freezing = True" in _config_line(both) and "`dynamic=None`" in _config_line(both)
    plain = SimpleNamespace(graph={}, knobs=None)
    assert "dynamic=None" not in _config_line(plain)
    ca = SimpleNamespace(graph={}, knobs={"compiled_autograd": knobs.KNOBS["compiled_autograd"]})
    assert "compiled autograd" in _config_line(ca) and "compiled autograd" not in _config_line(both)
