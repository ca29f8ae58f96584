"""The lab layer: seeded toy data sets, training by gradient descent on the compiled program, and
lab files (validated completely on load)."""
