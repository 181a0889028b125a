"""Emitters: optimized gate graphs -> module source text, one module per target."""
