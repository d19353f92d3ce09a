"""Circuit analysis: QK/OV circuits, copying scores, composition scores (vs TransformerLens), head detectors."""

import pytest
import torch

from mlreads.circuits import (
    AttnOnlyConfig,
    AttnOnlyTransformer,
    composition_baseline,
    composition_scores,
    copying_scores,
    direct_path,
    full_ov_circuit,
    full_qk_circuit,
    head_scores,
    induction_target,
    ov_copying_accuracy,
    pattern_score,
    previous_token_target,
    repeated_sequence_scores,
)
from mlreads.circuits.reference import composition_score_ref


def _model(seed=0, n_layers=3, **kw):
    cfg = AttnOnlyConfig(**{"n_layers": n_layers, "d_model": 24, "n_heads": 3, "d_head": 5, "d_vocab": 13, "n_ctx": 32, **kw})
    model = AttnOnlyTransformer(cfg)
    model.reset_parameters(torch.Generator().manual_seed(seed))
    return model


def test_full_circuits_equal_their_dense_products():
    model = _model()
    with torch.no_grad():
        W_E, W_U = model.W_E, model.W_U
        for layer in range(3):
            QK = model.W_Q[layer] @ model.W_K[layer].transpose(-2, -1)  # (H, D, D)
            OV = model.W_V[layer] @ model.W_O[layer]
            torch.testing.assert_close(full_qk_circuit(model, layer).AB, W_E @ QK @ W_E.T, rtol=1e-4, atol=1e-7)
            torch.testing.assert_close(full_ov_circuit(model, layer).AB, W_E @ OV @ W_U, rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(direct_path(model), W_E @ W_U)


def test_copying_score_is_plus_one_for_copying_and_minus_one_for_anti_copying_heads():
    model = _model(n_layers=1, d_model=13, d_head=13)
    eye = torch.eye(13)
    with torch.no_grad():
        model.W_E.copy_(eye)
        model.W_U.copy_(eye)
        model.blocks[0].attn.W_V.copy_(torch.stack([eye, eye, eye]))
        Q, _ = torch.linalg.qr(torch.randn(13, 13, generator=torch.Generator().manual_seed(0)))
        model.blocks[0].attn.W_O.copy_(torch.stack([2 * eye, -eye, Q]))  # copy, anti-copy, a random rotation
    scores = copying_scores(model)
    torch.testing.assert_close(scores[0, :2], torch.tensor([1.0, -1.0]), rtol=0, atol=1e-5)
    assert -0.5 < scores[0, 2] < 0.5  # a rotation's eigenvalues spread around the unit circle
    acc = ov_copying_accuracy(model)
    torch.testing.assert_close(acc[0, :2], torch.tensor([1.0, 0.0]))


@pytest.mark.parametrize("kind", ["Q", "K", "V"])
def test_composition_scores_match_dense_reference_lie_in_unit_interval_and_ignore_scale(kind):
    model = _model(1)
    scores = composition_scores(model, kind).detach()
    assert scores.shape == (3, 3, 3, 3)
    OV = (model.W_V @ model.W_O).detach()
    right = {"Q": model.W_Q @ model.W_K.transpose(-2, -1), "K": model.W_K @ model.W_Q.transpose(-2, -1), "V": OV}
    right = right[kind].detach()
    for l1 in range(3):
        for l2 in range(3):
            for h1 in range(3):
                for h2 in range(3):
                    want = composition_score_ref(OV[l1, h1], right[l2, h2]) if l1 < l2 else torch.tensor(0.0)
                    torch.testing.assert_close(scores[l1, h1, l2, h2], want, rtol=1e-4, atol=1e-6)
    assert (scores >= 0).all() and (scores <= 1).all()
    assert (scores[1:, :, :2] == 0).all() and (scores[0, :, 1:] > 0).all()
    with torch.no_grad():
        for p in (model.blocks[0].attn.W_O, model.blocks[1].attn.W_Q, model.blocks[2].attn.W_V):
            p.mul_(7.5)
    torch.testing.assert_close(composition_scores(model, kind).detach(), scores, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["Q", "K", "V"])
def test_composition_scores_equal_transformer_lens(kind):
    """TransformerLens `all_composition_scores(mode)`: its `composition_scores` on the stacked factored matrices, masked
    to earlier-layer first heads. Same weights, same definition."""
    pytest.importorskip("transformer_lens")
    from transformer_lens import FactoredMatrix as TLFactored
    from transformer_lens.utilities import composition_scores as tl_composition_scores

    model = _model(2)
    with torch.no_grad():
        W_Q, W_K, W_V, W_O = model.W_Q, model.W_K, model.W_V, model.W_O
        left = TLFactored(W_V, W_O)
        right = {"Q": TLFactored(W_Q, W_K.transpose(-2, -1)), "K": TLFactored(W_Q, W_K.transpose(-2, -1)).T, "V": left}
        theirs = tl_composition_scores(left, right[kind], broadcast_dims=True)
        layer = torch.arange(3)
        theirs = torch.where(layer[:, None, None, None] < layer[None, None, :, None], theirs, torch.zeros_like(theirs))
        ours = composition_scores(model, kind)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)


def test_composition_baseline_is_the_random_level():
    model = _model(3, d_model=64, d_head=8)
    base = composition_baseline(model, "K", n_samples=300)
    # Random models' own scores average to the baseline (same distribution of shapes, Gaussian factors).
    scores = composition_scores(_model(4, n_layers=2, d_model=64, d_head=8), "K")[0, :, 1].detach()
    assert 0.05 < base < 0.5
    assert abs(scores.mean().item() - base) < 0.05
    with pytest.raises(ValueError):
        composition_baseline(model, "X")


# ----- head detectors on hand-built patterns ---------------------------------------------------------------------------


def test_previous_token_score_is_one_for_a_perfect_head_and_low_for_uniform():
    L = 20
    perfect = torch.zeros(L, L)
    perfect[0, 0] = 1
    perfect[torch.arange(1, L), torch.arange(L - 1)] = 1
    uniform = torch.ones(L, L).tril()
    uniform = uniform / uniform.sum(-1, keepdim=True)
    current = torch.eye(L)
    scores = pattern_score(torch.stack([perfect, uniform, current]), previous_token_target(L))
    assert scores[0] == 1.0 and scores[2] == 0.0
    assert scores[1] < 0.2
    torch.testing.assert_close(scores[1], (1 / torch.arange(2, L + 1).float()).mean())


def test_induction_and_duplicate_scores_on_a_repeated_sequence():
    n = 10
    tokens = torch.randperm(n, generator=torch.Generator().manual_seed(0)).repeat(2)[None]  # (1, 2n), no accidental repeats
    L = 2 * n
    induction = torch.eye(L)  # first repeat: attend to self; second repeat: to the token after the earlier copy
    induction[n:] = 0
    induction[torch.arange(n, L), torch.arange(1, n + 1)] = 1
    duplicate = torch.eye(L)
    duplicate[n:] = 0
    duplicate[torch.arange(n, L), torch.arange(0, n)] = 1
    uniform = torch.ones(L, L).tril()
    uniform = uniform / uniform.sum(-1, keepdim=True)
    pats = torch.stack([induction, duplicate, uniform])[None]  # (1, 3, L, L)
    ind = pattern_score(pats, induction_target(tokens), query_start=n)
    torch.testing.assert_close(ind, torch.tensor([1.0, 0.0, (1 / torch.arange(n + 1, L + 1).float()).mean().item()]))
    tgt = induction_target(tokens)[0]
    assert tgt[n + 3, 4] and tgt.sum() == n  # query n+3 (token tokens[3]) targets key 4


class _FixedPatternModel(torch.nn.Module):
    """A stand-in 'any model with run_with_cache': two layers whose patterns are given."""

    def __init__(self, patterns):
        super().__init__()
        self.patterns = patterns

    def run_with_cache(self, tokens, names_filter=None):
        cache = {f"blocks.{i}.attn.hook_pattern": p.expand(tokens.shape[0], -1, -1, -1) for i, p in enumerate(self.patterns)}
        cache["blocks.0.hook_resid_pre"] = torch.zeros(1)
        return None, {k: v for k, v in cache.items() if names_filter is None or names_filter(k)}


def test_detectors_run_on_any_model_with_run_with_cache():
    n = 8
    L = 2 * n
    prev = torch.zeros(L, L)
    prev[0, 0] = 1
    prev[torch.arange(1, L), torch.arange(L - 1)] = 1
    ind = torch.eye(L)
    ind[n:] = 0
    ind[torch.arange(n, L), torch.arange(1, n + 1)] = 1
    uniform = torch.ones(L, L).tril() / torch.arange(1, L + 1)[:, None]
    model = _FixedPatternModel([torch.stack([prev, uniform])[None], torch.stack([uniform, ind])[None]])
    tokens = torch.randperm(n, generator=torch.Generator().manual_seed(1)).repeat(2)[None].expand(3, -1)
    s = repeated_sequence_scores(model, tokens)
    assert s["previous"].shape == (2, 2) and s["previous"][0, 0] == 1.0 and s["previous"][0, 1] < 0.3
    assert s["induction"][1, 1] == 1.0 and s["induction"][0, 0] < 0.2 and s["induction"][0, 1] < 0.2
    torch.testing.assert_close(head_scores(model, tokens, "previous"), s["previous"])


def test_detectors_on_a_real_model_read_its_patterns():
    model = _model(5, n_layers=2)
    tokens = torch.randint(0, 13, (4, 2 * 8), generator=torch.Generator().manual_seed(0))
    tokens[:, 8:] = tokens[:, :8]
    s = repeated_sequence_scores(model, tokens)
    _, cache = model.run_with_cache(tokens)
    want = torch.stack([cache["pattern", l].diagonal(-1, dim1=-2, dim2=-1).mean((0, 2)) for l in range(2)])
    torch.testing.assert_close(s["previous"], want)
    assert ((s["induction"] >= 0) & (s["induction"] <= 1)).all()


def test_detectors_work_on_the_gpt_model_too():
    """DESIGN: the circuits tools read TL-style hook names, so they run on mlreads.gpt.GPT unchanged."""
    from mlreads.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    gpt = GPT(GPTConfig(d_vocab=13, n_ctx=16, n_layers=2, n_heads=2, d_model=16)).eval()
    tokens = torch.randint(0, 13, (3, 16), generator=torch.Generator().manual_seed(0))
    tokens[:, 8:] = tokens[:, :8]
    s = repeated_sequence_scores(gpt, tokens)
    _, cache = gpt.run_with_cache(tokens)
    pats = [cache[f"blocks.{l}.attn.hook_pattern"] for l in range(2)]
    want = torch.stack([p.diagonal(-1, dim1=-2, dim2=-1).mean((0, 2)) for p in pats])
    torch.testing.assert_close(s["previous"], want)
    assert s["induction"].shape == (2, 2)
