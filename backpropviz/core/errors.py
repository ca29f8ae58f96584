"""The one exception backpropviz raises for bad input."""


class BackpropError(ValueError):
    """Bad input, with the module, the step and the shapes involved in its message."""


def shape_str(a) -> str:
    """'3×2' for a matrix, '3' for a vector, 'scalar' for a single number."""
    shape = getattr(a, "shape", ())
    return "×".join(str(n) for n in shape) if shape else "scalar"


def shape_words(a) -> str:
    """A shape as a learner says it: 'a single number', 'a vector of 2 entries', 'a 2×3 matrix'."""
    shape = getattr(a, "shape", ())
    if not shape:
        return "a single number"
    if len(shape) == 1:
        return f"a vector of {shape[0]} entr{'y' if shape[0] == 1 else 'ies'}"
    return f"a {shape_str(a)} matrix" if len(shape) == 2 else f"an array of shape {shape_str(a)}"


def brief(x, n: int = 60) -> str:
    """repr(x) for a message, cut to n characters (a list of a million positions, or an int
    that Python refuses to write out in full, must not become the message)."""
    try:
        s = repr(x)
    except ValueError:                  # an int of more than 4,300 digits (sys.int_info)
        return "a whole number too long to write out"
    return s if len(s) <= n else s[:n] + "…"
