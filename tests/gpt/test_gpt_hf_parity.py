"""GPT.from_hf against a randomly initialised transformers GPT2LMHeadModel (the oracle)."""

import pytest
import torch

from mlreads.gpt import GPT

transformers = pytest.importorskip("transformers")


def hf_gpt2(activation: str, seed: int = 0):
    cfg = transformers.GPT2Config(
        vocab_size=97,
        n_positions=32,
        n_embd=64,
        n_layer=2,
        n_head=4,
        activation_function=activation,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
        # Larger than GPT-2's 0.02 so the pre-activations reach the range where tanh-GELU and erf-GELU differ,
        # and a wrong activation or a missing transpose shows far above the tolerance.
        initializer_range=0.2,
    )
    torch.manual_seed(seed)
    return transformers.GPT2LMHeadModel(cfg).eval()


@pytest.mark.parametrize("activation,gelu", [("gelu_new", "tanh"), ("gelu", "exact")])
def test_logits_match_hf(activation, gelu):
    hf = hf_gpt2(activation)
    ours = GPT.from_hf(hf).eval()
    assert ours.cfg.gelu == gelu
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(0, 97, (3, 32), generator=g)
    with torch.no_grad():
        want = hf(idx).logits
        got = ours(idx)
    assert (got - want).abs().max().item() <= 1e-5
    # the test is only meaningful if the logits are not all tiny
    assert want.std().item() > 0.5


def test_weights_are_tied_and_counted_once():
    hf = hf_gpt2("gelu_new")
    ours = GPT.from_hf(hf)
    assert ours.num_params() == sum(p.numel() for p in hf.parameters())
    assert torch.equal(ours.W_U.T, hf.lm_head.weight)


def test_loss_and_grads_match_hf():
    hf = hf_gpt2("gelu_new")
    ours = GPT.from_hf(hf)
    g = torch.Generator().manual_seed(2)
    idx = torch.randint(0, 97, (2, 16), generator=g)
    hf_loss = hf(idx, labels=idx).loss
    logits = ours(idx)
    our_loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 97), idx[:, 1:].reshape(-1))
    torch.testing.assert_close(our_loss, hf_loss, rtol=1e-5, atol=1e-6)
    hf_loss.backward()
    our_loss.backward()
    hf_grads = dict(hf.named_parameters())
    torch.testing.assert_close(ours.wte.weight.grad, hf_grads["transformer.wte.weight"].grad, rtol=1e-4, atol=1e-6)
    hf_c_attn = hf_grads["transformer.h.0.attn.c_attn.weight"].grad.T  # Conv1D (in, out) -> Linear (out, in)
    torch.testing.assert_close(ours.blocks[0].attn.c_attn.weight.grad, hf_c_attn, rtol=1e-4, atol=1e-6)


def test_from_hf_accepts_the_bare_gpt2model():
    hf = hf_gpt2("gelu")
    idx = torch.randint(0, 97, (2, 10), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(GPT.from_hf(hf.transformer).eval()(idx), hf(idx).logits, rtol=0, atol=1e-5)


def test_from_hf_refuses_what_it_cannot_represent():
    hf = hf_gpt2("gelu_new")
    hf.config.activation_function = "prelu"  # a learned slope: no parameter-free equivalent
    with pytest.raises(ValueError, match="activation_function"):
        GPT.from_hf(hf)
