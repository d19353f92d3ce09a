"""The GPT on a CUDA device agrees with the CPU (run with -m gpu on a machine with a GPU)."""

import pytest
import torch
from torch.testing import assert_close

from mlreads.gpt import GPT, GPTConfig

pytestmark = pytest.mark.gpu


@pytest.fixture
def cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch.device("cuda")


def test_cuda_logits_and_generation_match_cpu(cuda):
    torch.manual_seed(0)
    cfg = GPTConfig(d_vocab=50, n_ctx=32, n_layers=2, n_heads=4, d_model=64)
    model = GPT(cfg).eval()
    idx = torch.randint(0, 50, (4, 32), generator=torch.Generator().manual_seed(1))
    want = model(idx)
    gpu = GPT(cfg).to(cuda).eval()
    gpu.load_state_dict(model.state_dict())
    assert_close(gpu(idx.to(cuda)).cpu(), want, rtol=1e-4, atol=1e-4)
    assert_close(gpu.run_with_hooks(idx.to(cuda), fwd_hooks=[("blocks.0.attn.hook_pattern", lambda a, h: None)]).cpu(),
                 want, rtol=1e-4, atol=1e-4)  # fmt: skip
    prompt = idx[:, :3].to(cuda)
    a = gpu.generate(prompt, 40, temperature=1.0, generator=torch.Generator(cuda).manual_seed(3))
    b = gpu.generate(prompt, 40, temperature=1.0, generator=torch.Generator(cuda).manual_seed(3), use_cache=False)
    assert torch.equal(a, b)
