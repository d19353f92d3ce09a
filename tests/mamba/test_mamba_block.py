"""The channel-first Mamba block (fused conv, Δ's bias and softplus inside the scan, batched projections) against the
same model on the reference scan and torch's conv (the kernels), and against its own token-by-token recurrence
(`MambaLM.step`: in_proj, conv and projections written per token, in (B, .) layout: the block's code): outputs and
every parameter's gradient, float64."""

import pytest
import torch

from mlreads.mamba import csrc
from mlreads.mamba.model import MambaConfig, MambaLM

pytestmark = pytest.mark.skipif(not csrc.available(), reason="the fused extension cannot be built here")


def _loss_and_grads(cfg: MambaConfig, idx: torch.Tensor, impl: str):
    """impl: a scan_impl for the full forward, or "step" for the token-by-token recurrence."""
    torch.manual_seed(0)
    m = MambaLM(MambaConfig(**{**cfg.__dict__, "scan_impl": "fused" if impl == "step" else impl})).double()
    with torch.no_grad():  # off the init, so that conv bias, D and Δ's weights all matter
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    if impl == "step":
        state, outs = m.init_state(idx.shape[0]), []
        for t in range(idx.shape[1]):
            out, state = m.step(idx[:, t], state)
            outs.append(out)
        logits = torch.stack(outs, 1)
    else:
        logits = m(idx)
    (logits.square().mean() + logits[:, -1].sum()).backward()
    return logits, {n: p.grad for n, p in m.named_parameters()}


@pytest.mark.parametrize("selective", [True, False])
@pytest.mark.parametrize("bias", [False, True])
def test_fused_block_matches_reference_outputs_and_gradients(selective, bias):
    cfg = MambaConfig(d_vocab=19, d_model=24, n_layers=2, d_state=8, chunk_size=7, selective=selective, bias=bias)
    idx = torch.randint(0, 19, (3, 23), generator=torch.Generator().manual_seed(1))
    fused, g_fused = _loss_and_grads(cfg, idx, "fused")
    for impl in ("ref", "step"):
        ref, g_ref = _loss_and_grads(cfg, idx, impl)
        torch.testing.assert_close(fused, ref, rtol=1e-9, atol=1e-10)
        assert g_fused.keys() == g_ref.keys()
        for name in g_ref:
            assert g_fused[name] is not None, name
            torch.testing.assert_close(g_fused[name], g_ref[name], rtol=1e-8, atol=1e-10, msg=f"{impl}: {name}")
