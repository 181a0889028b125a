"""Module writers: gate graphs to module text (`python`, and `numpy` its subclass), whole-bus
plans to module text (`whole` for NumPy, `loops` for plain Python, over `frame`), and what
they all write alike (`text`); the helper functions modules carry (`python_helpers`,
`numpy_helpers`, `hessian_helpers`)."""
