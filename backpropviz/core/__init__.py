"""The core layer (numpy only): errors and input checks, gradient keys, expressions and the rule
table, modules, programs and their interpreter, tracing, networks, the trace and its file format,
gradcheck. It imports nothing from the layers above."""
