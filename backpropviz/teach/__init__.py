"""The teach layer: the Stepper's model (testable without a browser), rebuilding a trace from
new settings, hints for typical slips, questions and the checks of a learner's exercises."""
