"""The one exception backpropviz raises for bad input."""


class BackpropError(ValueError):
    """Bad input, with the module, the step and the shapes involved in its message."""


def shape_str(a) -> str:
    """'3×2' for a matrix, '3' for a vector, 'scalar' for a single number."""
    shape = getattr(a, "shape", ())
    return "×".join(str(n) for n in shape) if shape else "scalar"
