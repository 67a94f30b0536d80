"""Generation: rules -> graphs (Z3) -> programs with values."""
