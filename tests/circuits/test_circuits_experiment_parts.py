"""The measuring parts of the circuits experiments, on hand-built inputs (the experiments themselves run at smoke in
tests/test_smoke.py)."""

import pytest
import torch

from mlreads.circuits import AttnOnlyConfig, AttnOnlyTransformer
from mlreads.circuits.exp_copying_heads import census_settled, skip_trigrams
from mlreads.circuits.exp_zero_layer_bigram import BigramConfig, _row_centred_corr


def test_bigram_correlation_is_one_for_the_log_bigram_table_plus_row_constants():
    g = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 300, (12, 12), generator=g).double()
    counts[3] = 0  # a token never seen as "current": left out
    logp = (counts / counts.sum(1, keepdim=True).clamp_min(1)).log()
    table = torch.where(torch.isfinite(logp), logp, torch.full_like(logp, -50.0)) + torch.randn(12, 1, generator=g) * 5
    cfg = BigramConfig(min_row_count=1, min_pair_count=5)
    corr, _, _, mask = _row_centred_corr(table, counts, cfg)
    assert abs(corr - 1) < 1e-9
    assert not mask[3].any() and not mask[counts < 5].any()
    noisy, *_ = _row_centred_corr(table + torch.randn(12, 12, generator=g), counts, cfg)
    anti, *_ = _row_centred_corr(-table, counts, cfg)
    assert 0 < noisy < 0.99 and abs(anti + 1) < 1e-9


def test_skip_trigrams_read_the_planted_circuit():
    """One head, identity embeddings: token 2 is attended to by query token 5 and raises the logit of token 7."""
    V = 8
    model = AttnOnlyTransformer(AttnOnlyConfig(n_layers=1, d_model=V, n_heads=1, d_head=V, d_vocab=V, n_ctx=4))
    eye = torch.eye(V)
    with torch.no_grad():
        model.W_E.copy_(eye)
        model.W_U.copy_(eye)
        attn = model.blocks[0].attn
        attn.W_V.copy_(eye[None])
        ov = torch.zeros(V, V)
        ov[2, 7] = 3.0  # source 2 -> output 7
        ov[4, 4] = 1.0  # source 4 copies itself, weaker
        attn.W_O.copy_(ov[None])
        attn.W_Q.copy_(eye[None])
        qk = torch.zeros(V, V)
        qk[5, 2] = 4.0  # query 5 attends to key 2
        qk[1, 4] = 4.0
        attn.W_K.copy_(qk.T[None])  # QK = W_Q W_K^T = qk
    trigrams = skip_trigrams(model, 0, 0, [str(i) for i in range(V)], top=V, n=2)
    assert [(a, b, c) for a, b, c, _ in trigrams] == [("2", "5", "7"), ("4", "1", "4")]
    assert trigrams[0][3] > trigrams[1][3] > 0


def test_phase_change_aligned_passes_together_and_fails_apart():
    from mlreads.circuits.exp_induction_heads import phase_change_aligned

    steps = [100, 200, 300, 400, 500, 600]
    # The smoke run's 2-layer curves: the score jumps 300 -> 400, as the loss on the 2nd repeat falls most.
    induction = [0.33, 0.22, 0.22, 0.62, 0.73, 0.77]
    loss_rep2 = [3.48, 3.04, 2.79, 1.10, 0.64, 0.52]
    assert phase_change_aligned(steps, induction, loss_rep2, window=0) == (True, 400, 400)
    # Its 1-layer curves: the loss falls most early (100 -> 200), the score creeps up late (400 -> 500): no phase
    # change in common.
    induction_1 = [0.22, 0.21, 0.16, 0.155, 0.18, 0.20]
    loss_rep2_1 = [3.38, 3.02, 3.19, 3.15, 2.85, 2.61]
    assert phase_change_aligned(steps, induction_1, loss_rep2_1, window=1) == (False, 500, 200)
    # One evaluation apart passes with window 1 and fails with window 0.
    shifted = [0.33, 0.22, 0.62, 0.65, 0.73, 0.77]
    assert phase_change_aligned(steps, shifted, loss_rep2, window=1)[0]
    assert not phase_change_aligned(steps, shifted, loss_rep2, window=0)[0]
    with pytest.raises(ValueError):
        phase_change_aligned([100], [0.5], [1.0], window=1)


def test_the_copying_census_must_hold_over_the_last_fifth_of_training():
    history = [{"step": s, "n_copying": n} for s, n in ((500, 1), (1000, 3), (2000, 4), (2250, 4), (2500, 4))]
    history.insert(2, {"step": 1500, "val_loss": 3.9})  # rows without a census are skipped
    assert census_settled(history, 2500, 4, 0.2) == (True, [4, 4, 4])
    assert census_settled(history, 2500, 5, 0.2)[0] is False  # the final count differs from the late ones
    assert census_settled(history, 2500, 4, 0.7) == (False, [3, 4, 4, 4])  # a head turned within the window
    assert census_settled([{"step": 100, "n_copying": 4}], 2500, 4, 0.2) == (False, [])  # no late evaluation
