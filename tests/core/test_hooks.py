"""HookPoint and run_with_cache on a small hooked module."""

import pytest
import torch
from torch import nn

from mlreads.core.nn.hooks import HookedModule, HookPoint


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.hook_out = HookPoint()

    def forward(self, x):
        return self.hook_out(self.lin(x))


class Net(HookedModule):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([Block(), Block()])
        self.hook_in = HookPoint()

    def forward(self, x):
        x = self.hook_in(x)
        for b in self.blocks:
            x = b(x)
        return x


def test_cache_names_and_values():
    torch.manual_seed(0)
    net, x = Net(), torch.randn(2, 4)
    out, cache = net.run_with_cache(x)
    assert list(cache) == ["blocks.0.hook_out", "blocks.1.hook_out", "hook_in"]
    torch.testing.assert_close(cache["blocks.1.hook_out"], out, rtol=0, atol=0)
    torch.testing.assert_close(cache["blocks.0.hook_out"], net.blocks[0].lin(x), rtol=0, atol=0)
    assert cache["hook_out", 0] is cache["blocks.0.hook_out"]
    _, only = net.run_with_cache(x, names_filter=lambda n: n.startswith("blocks.1"))
    assert list(only) == ["blocks.1.hook_out"]


def test_hooks_can_patch_and_are_removed_afterwards():
    torch.manual_seed(0)
    net, x = Net(), torch.randn(2, 4)
    clean = net(x)
    zeroed = net.run_with_hooks(x, fwd_hooks=[("blocks.0.hook_out", lambda a, h: torch.zeros_like(a))])
    torch.testing.assert_close(zeroed, net.blocks[1].lin(torch.zeros(2, 4)), rtol=0, atol=0)
    torch.testing.assert_close(net(x), clean, rtol=0, atol=0)
    with pytest.raises(KeyError, match="no hook point"):
        net.run_with_hooks(x, fwd_hooks=[("blocks.9.hook_out", lambda a, h: None)])


class AliasedNet(Net):
    """The same module tree as Net, published under other names (as models with fixed state_dict keys do)."""

    hook_aliases = ((r"^blocks\.(\d+)\.", r"layers.\1."), (r"^hook_in$", "embed.hook_in"))


def test_hook_aliases_rename_hook_points_but_not_parameters():
    torch.manual_seed(0)
    net, x = AliasedNet(), torch.randn(2, 4)
    assert list(net.hook_points()) == ["layers.0.hook_out", "layers.1.hook_out", "embed.hook_in"]
    assert "blocks.0.lin.weight" in net.state_dict()
    out, cache = net.run_with_cache(x)
    torch.testing.assert_close(cache["layers.1.hook_out"], out, rtol=0, atol=0)
    zeroed = net.run_with_hooks(x, fwd_hooks=[("layers.0.hook_out", lambda a, h: torch.zeros_like(a))])
    torch.testing.assert_close(zeroed, net.blocks[1].lin(torch.zeros(2, 4)), rtol=0, atol=0)
