"""The project-wide axis legend, used in shape comments and docstrings (no jaxtyping dependency: one comment style).

    B  batch                  L  sequence length        D  model width (d_model)
    E  inner width (d_inner)  H  heads                  N  state size (d_state)
    V  vocabulary             F  features               K  kernel / conv width
    P  head size (d_head)     I  model instances (batched toy models)

A shape comment reads ``# (B, L, D)``; a docstring reads ``x (B, L, D) -> (B, L, V)``. Other letters are local to a
module and listed in its glossary (G groups, S source length, T target length, C classes).
"""
