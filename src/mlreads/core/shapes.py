"""The project-wide axis legend, used in shape comments and jaxtyping signatures.

    B  batch                  L  sequence length        D  model width (d_model)
    E  inner width (d_inner)  H  heads                  N  state size (d_state)
    V  vocabulary             F  features               K  kernel / conv width
    P  head size (d_head)     I  model instances (batched toy models)

A shape comment reads ``# (B, L, D)``; a signature reads ``Float[Tensor, "B L D"]``.
"""

AXES = {
    "B": "batch",
    "L": "sequence length",
    "D": "model width (d_model)",
    "E": "inner width (d_inner)",
    "H": "heads",
    "N": "state size (d_state)",
    "V": "vocabulary",
    "F": "features",
    "K": "kernel / conv width",
    "P": "head size (d_head)",
    "I": "model instances",
}
