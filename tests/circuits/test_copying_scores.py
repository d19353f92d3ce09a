"""circuits/copying-heads: the copying score is the eigenvalue ratio of the full V x V OV circuit (paper convention),
and the self-attention diagnostic reads where heads attend."""

import torch

from mlreads.circuits import AttnOnlyConfig, AttnOnlyTransformer, copying_scores
from mlreads.circuits.exp_copying_heads import CopyingConfig, self_attention


def _model(V=40, D=12, P=4, H=3, seed=0):
    cfg = AttnOnlyConfig(n_layers=1, d_model=D, n_heads=H, d_head=P, d_vocab=V, n_ctx=16)
    return AttnOnlyTransformer(cfg, generator=torch.Generator().manual_seed(seed))


def test_copying_score_equals_the_dense_vocab_circuit_in_the_papers_column_convention():
    # The paper's OV circuit is W_U W_O^h W_V^h W_E (column vectors), a V x V matrix of rank d_head. Our factored
    # score (eigenvalues of the d_head x d_head product) must equal sum(lambda)/sum(|lambda|) over all V eigenvalues
    # of that dense matrix, with V > d_model so that W_E and W_U are not square.
    model = _model()
    with torch.no_grad():
        got = copying_scores(model)[0].double()
        W_E, W_U = model.W_E.double(), model.W_U.double()
        for h in range(3):
            W_V, W_O = model.W_V[0, h].double(), model.W_O[0, h].double()
            paper = W_U.T @ W_O.T @ W_V.T @ W_E.T  # (V, V): column-vector convention
            lam = torch.linalg.eigvals(paper)  # (V,): V - d_head of them are ~0
            want = lam.sum().real / lam.abs().sum()
            torch.testing.assert_close(got[h], want, rtol=0, atol=2e-4)
            assert (lam.abs() > 1e-6 * lam.abs().max()).sum() <= 4  # rank d_head: the zeros add nothing


def test_copying_score_sign_follows_the_ov_circuit_not_the_embedding_basis():
    # With OV = (W_U W_E)^-1 (D x D), the nonzero spectrum of W_E OV W_U is that of OV W_U W_E = I: score +1 through
    # random, non-identity embeddings; the negated circuit scores -1.
    model = _model(V=30, D=8, P=8, H=2)
    with torch.no_grad():
        OV = torch.linalg.inv(model.W_U.double() @ model.W_E.double()).float()  # (D, D)
        model.blocks[0].attn.W_V.copy_(torch.stack([torch.eye(8), torch.eye(8)]))
        model.blocks[0].attn.W_O.copy_(torch.stack([OV, -OV]))
        scores = copying_scores(model)[0]
    torch.testing.assert_close(scores, torch.tensor([1.0, -1.0]), rtol=0, atol=1e-4)


def test_self_attention_is_one_for_a_head_that_attends_to_itself_and_harmonic_for_uniform_attention():
    class _Data:
        def get_batch(self, split, batch_size, n_ctx, gen):
            x = torch.randint(0, 20, (batch_size, n_ctx), generator=gen)
            return x, x

    cfg = CopyingConfig(d_model=8, n_heads=2, d_head=8, n_ctx=16)
    model = AttnOnlyTransformer(AttnOnlyConfig(n_layers=1, d_model=8, n_heads=2, d_head=8, d_vocab=20, n_ctx=16),
                                generator=torch.Generator().manual_seed(0))  # fmt: skip
    with torch.no_grad():
        model.W_E.zero_()  # queries and keys see positions only (shortformer)
        pos = torch.randn(16, 8, generator=torch.Generator().manual_seed(1))
        model.W_pos.copy_(pos / pos.norm(dim=1, keepdim=True) * 3)  # equal norms: each position matches itself best
        attn = model.blocks[0].attn
        attn.W_Q.copy_(torch.stack([10 * torch.eye(8), torch.zeros(8, 8)]))
        attn.W_K.copy_(torch.stack([10 * torch.eye(8), torch.zeros(8, 8)]))
    sa = self_attention(model, _Data(), cfg)
    assert sa.shape == (2,)
    assert sa[0] > 0.99
    # head 1 has zero scores: uniform attention over i + 1 keys, so the mean over i = 1..15 of 1 / (i + 1)
    torch.testing.assert_close(sa[1], torch.tensor(sum(1 / (i + 1) for i in range(1, 16)) / 15), rtol=1e-5, atol=1e-6)
