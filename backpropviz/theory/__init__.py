"""The theory layer: the scalar circuit of Theorem 7.4.1 (decompose.py: each module as atomic
operations; engine.py: the compiled structure and its vectorised passes; circuit.py: the Circuit
and ``bpv.circuit``; expand.py: one module expanded in place) and the cost of backprop
(cost.py: Theorem 7.4.1, Remark 7.4.2). Imports the core only."""
