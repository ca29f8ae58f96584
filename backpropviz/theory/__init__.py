"""The theory layer: the scalar circuit of Theorem 7.4.1 (decompositions, its vectorised engine,
the Circuit, expanding one module) and the cost of backprop (Theorem 7.4.1, Remark 7.4.2).
Imports the core only."""
