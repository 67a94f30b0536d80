"""Assay's fuzzing half: traces -> rules -> graphs -> programs -> verdicts -> cases."""
