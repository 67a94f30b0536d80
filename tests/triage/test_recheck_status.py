"""What a re-run of a saved case is called: a pass the oracle now excuses is not a torch fix."""

from fuzz.campaign.case import Case
from fuzz.campaign.failure import sign
from fuzz.campaign.verdict import Kind, Verdict
from fuzz.triage.actions import recheck_status, render_recheck


def _case():
    return Case(id="m1", kind=Kind.MISMATCH, backend="inductor", mode="fwd", signature="mismatch-inductor-abc",
                diff={"where": "out0", "max_abs": 3.0}, ops=["torch.sum"])


def test_a_pass_that_skipped_the_value_that_differed_is_excused_not_fixed():
    skipped = Verdict(Kind.PASS, "", skipped_values={"out0": "sums values within 1/16 of float16's max"})
    assert recheck_status(_case(), skipped, None) == ("excused", "out0: sums values within 1/16 of float16's max")
    other_skipped = Verdict(Kind.PASS, "", skipped_values={"out1": "not finite in float64"})
    assert recheck_status(_case(), other_skipped, None) == ("fixed", "")
    assert recheck_status(_case(), Verdict(Kind.PASS, ""), None) == ("fixed", "")
    still = Verdict(Kind.CRASH, "raised", error={"type": "RuntimeError", "message": "boom"}, backend="inductor", mode="fwd")
    sig = sign(still, ["torch.sum"])
    assert recheck_status(_case(), still, sig)[0] == "changed"
    text = render_recheck([{"case_id": "m1", "status": "excused", "excused": "out0: sums values"}])
    assert "m1  not judged by today's oracle  (out0: sums values)" in text and "FIXED" not in text
