"""transformers' parameter-free activations by their `ACT2FN` names, for the `from_hf` converters and the configs that
name an activation (`GPTConfig.act_fn`, `ResNetConfig.act_fn`, `TransformerConfig.act_fn`).

Each entry is the same function transformers applies under that name (checked one name at a time against transformers
in tests/gpt/test_gpt_compat.py). "prelu" and "xielu" carry learned parameters and are not here: a converter refuses
them in one line, as it refuses a name transformers does not know.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def _laplace(x: Tensor, mu: float = 0.707107, sigma: float = 0.282095) -> Tensor:
    return 0.5 * (1.0 + torch.erf((x - mu) / (sigma * math.sqrt(2.0))))


def _gelu_tanh(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


def _gelu_fast(x: Tensor) -> Tensor:
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu, "gelu_python": F.gelu,
    "gelu_new": _gelu_tanh, "gelu_pytorch_tanh": _gelu_tanh, "gelu_python_tanh": _gelu_tanh,
    "gelu_accurate": _gelu_tanh,
    "gelu_fast": _gelu_fast, "gelu_10": lambda x: F.gelu(x).clamp(-10, 10),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x), "laplace": _laplace,
    "relu": F.relu, "relu2": lambda x: F.relu(x).square(), "relu6": F.relu6, "leaky_relu": F.leaky_relu,
    "silu": F.silu, "swish": F.silu, "hardswish": F.hardswish, "mish": F.mish,
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "linear": lambda x: x,
    "sqrtsoftplus": lambda x: F.softplus(x).sqrt(),
}  # fmt: skip


def activation(name: str, field: str = "act_fn") -> Callable[[Tensor], Tensor]:
    """ACTIVATIONS[name], or a one-line ValueError naming `field` (the config field that carried the name)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"{field}={name!r} is not supported: the parameter-free activations are {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]
