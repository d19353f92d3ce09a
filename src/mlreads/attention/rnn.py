"""RNNencdec and RNNsearch: Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by Jointly Learning to Align
and Translate", arXiv:1409.0473, Section 3 and Appendix A.

RNNsearch encodes the source with a bidirectional RNN into annotations h_j = [→h_j; ←h_j] and, at every target step,
scores each annotation against the previous decoder state (Eq. 6, App. A.1.2):

    e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j),   α_ij = softmax_j(e_ij),   c_i = Σ_j α_ij h_j

RNNencdec (Cho et al. 2014, as the paper's baseline) compresses the source into one fixed vector c = tanh(V h_T)
and feeds that same c to every decoder step.

The recurrent unit is the paper's gated unit (App. A.1.1), whose reset gate acts *before* the recurrent matrix:

    r = σ(W_r x + U_r s + C_r c)          z = σ(W_z x + U_z s + C_z c)
    s̃ = tanh(W x + U [r ∘ s] + C c)       s_new = (1 - z) ∘ s + z ∘ s̃

`torch.nn.GRUCell` applies the reset gate *after* the matrix product, tanh(W x + r ∘ (U s + b)) (the cuDNN
"reset_after" form), and uses z for the old state, s_new = (1 - z) ∘ s̃ + z ∘ s. `PaperGRUCell(reset_after=True)`
is that variant (with the paper's z convention), kept to show the two are different functions (tests).

The output layer is the paper's deep output with a maxout hidden layer (App. A.2.2):

    t̃_i = U_o s_{i-1} + V_o E y_{i-1} + C_o c_i,   t_i = max over pairs of t̃_i,   p(y_i) = softmax(W_o t_i)

Glossary (code name -> paper symbol): `d_embed` m (620 in the paper), `d_hidden` n (1000), `d_maxout` l (500),
`d_align` n' (1000); `w_init` W_s (s_0 = tanh(W_s ←h_1)); `align_w` W_a, `align_u` U_a, `align_v` v_a;
`out_s` U_o, `out_y` V_o, `out_c` C_o, `out_w` W_o.

Deviations:
- biases on the input projections and the output layer (the paper omits biases "to make the equations less cluttered");
- greedy decoding in the experiments (the paper uses beam search); `beam_search` is here for full runs;
- sizes are far smaller (see the experiment configs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mlreads.core.data.translation import BOS, EOS, PAD
from mlreads.core.nn.decoding import beam_search
from mlreads.core.nn.hooks import HookedModule, HookPoint


@dataclass(frozen=True)
class RNNConfig:
    src_vocab: int = 300
    tgt_vocab: int = 300
    d_embed: int = 32  # m
    d_hidden: int = 64  # n
    d_maxout: int = 32  # l, units after the maxout (2l before it)
    d_align: int = 64  # n', the alignment model's hidden size
    attention: bool = True  # True: RNNsearch; False: RNNencdec

    def __post_init__(self):
        for name in ("src_vocab", "tgt_vocab", "d_embed", "d_hidden", "d_maxout", "d_align"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")


class PaperGRUCell(nn.Module):
    """The gated recurrent unit of App. A.1.1, optionally with a context input c. x (B, d_in), s (B, H),
    c (B, d_ctx) -> (B, H). `reset_after=True` applies r after the recurrent product (nn.GRUCell's form)."""

    def __init__(self, d_in: int, d_hidden: int, d_context: int = 0, reset_after: bool = False):
        super().__init__()
        self.d_hidden, self.reset_after = d_hidden, reset_after
        self.w = nn.Linear(d_in, 3 * d_hidden)  # [W_r; W_z; W] x, with biases
        self.u_rz = nn.Linear(d_hidden, 2 * d_hidden, bias=False)  # [U_r; U_z]
        self.u = nn.Linear(d_hidden, d_hidden, bias=reset_after)  # U (nn.GRUCell has b_hn inside the reset)
        self.c = nn.Linear(d_context, 3 * d_hidden, bias=False) if d_context else None  # [C_r; C_z; C]

    def forward(self, x: Tensor, s: Tensor, c: Tensor | None = None) -> Tensor:
        gx = self.w(x)  # (B, 3H)
        if self.c is not None:
            gx = gx + self.c(c)
        H = self.d_hidden
        r, z = torch.sigmoid(gx[:, : 2 * H] + self.u_rz(s)).chunk(2, dim=1)  # 2 x (B, H)
        if self.reset_after:
            s_tilde = torch.tanh(gx[:, 2 * H :] + r * self.u(s))  # (B, H)
        else:
            s_tilde = torch.tanh(gx[:, 2 * H :] + self.u(r * s))  # (B, H), U [r ∘ s]
        return (1 - z) * s + z * s_tilde


def run_rnn(cell: PaperGRUCell, x: Tensor, mask: Tensor, reverse: bool = False) -> Tensor:
    """Run a cell over x (B, S, d_in) from a zero state; padded steps (mask False) keep the state. -> (B, S, H)."""
    B, S, _ = x.shape
    s = x.new_zeros(B, cell.d_hidden)
    out = [None] * S
    for t in (range(S - 1, -1, -1) if reverse else range(S)):
        s = torch.where(mask[:, t, None], cell(x[:, t], s), s)
        out[t] = s
    return torch.stack(out, dim=1)


class Seq2Seq(HookedModule):
    """RNNsearch (`cfg.attention`) or RNNencdec. `forward(src, tgt_in)` -> (logits (B, T, V), alignments (B, T, S)
    or None).

    Hook points (`run_with_cache`, `run_with_hooks`; `hook_aliases` publishes the attributes hook_enc_* / hook_dec_*
    as encoder.* / decoder.*):
        encoder.hook_embed          (B, S, m)   E x, the source embeddings
        encoder.hook_annotations    (B, S, 2n)  h_j = [→h_j; ←h_j]                 RNNsearch only
        encoder.hook_summary        (B, n)      c = tanh(V h_T)                     RNNencdec only
        decoder.hook_init_state     (B, n)      s_0
        decoder.hook_alpha          (B, S)      α_i of one decoder step            RNNsearch only
        decoder.hook_attn           (B, T, S)   α_ij of every step (the returned alignments)   RNNsearch only
    decoder.hook_alpha fires once per decoder step, so a hook function there edits every step's attention (and the
    context c_i built from it); a cache keeps only the last step there: read all steps from decoder.hook_attn, which
    fires once after the last step (replacing it changes the returned alignments, not the logits).
    """

    hook_aliases = ((r"^hook_enc_", "encoder.hook_"), (r"^hook_dec_", "decoder.hook_"))

    def __init__(self, cfg: RNNConfig):
        super().__init__()
        self.cfg = cfg
        m, n = cfg.d_embed, cfg.d_hidden
        self.src_embed = nn.Embedding(cfg.src_vocab, m, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab, m, padding_idx=PAD)
        self.enc_fwd = PaperGRUCell(m, n)
        d_ctx = 2 * n if cfg.attention else n
        if cfg.attention:
            self.enc_bwd = PaperGRUCell(m, n)
            self.w_init = nn.Linear(n, n)  # W_s: s_0 = tanh(W_s ←h_1)
            self.align_w = nn.Linear(n, cfg.d_align, bias=False)  # W_a
            self.align_u = nn.Linear(2 * n, cfg.d_align)  # U_a
            self.align_v = nn.Linear(cfg.d_align, 1, bias=False)  # v_a
        else:
            self.summary = nn.Linear(n, n)  # V: c = tanh(V h_T)
            self.w_init = nn.Linear(n, n)  # V': s_0 = tanh(V' c)
        self.dec = PaperGRUCell(m, n, d_context=d_ctx)
        self.out_s = nn.Linear(n, 2 * cfg.d_maxout)  # U_o
        self.out_y = nn.Linear(m, 2 * cfg.d_maxout, bias=False)  # V_o
        self.out_c = nn.Linear(d_ctx, 2 * cfg.d_maxout, bias=False)  # C_o
        self.out_w = nn.Linear(cfg.d_maxout, cfg.tgt_vocab)  # W_o
        self.hook_enc_embed, self.hook_dec_init_state = HookPoint(), HookPoint()
        if cfg.attention:
            self.hook_enc_annotations, self.hook_dec_alpha, self.hook_dec_attn = HookPoint(), HookPoint(), HookPoint()
        else:
            self.hook_enc_summary = HookPoint()

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """src (B, S) -> (annotations (B, S, 2n) or the summary c (B, 1, n), source mask (B, S), s_0 (B, n))."""
        mask = src != PAD  # (B, S)
        x = self.hook_enc_embed(self.src_embed(src))  # (B, S, m)
        fwd = run_rnn(self.enc_fwd, x, mask)  # (B, S, n)
        if self.cfg.attention:
            bwd = run_rnn(self.enc_bwd, x, mask, reverse=True)  # (B, S, n)
            annotations = self.hook_enc_annotations(torch.cat([fwd, bwd], dim=-1))  # (B, S, 2n)
            s0 = torch.tanh(self.w_init(annotations[:, 0, self.cfg.d_hidden :]))  # W_s ←h_1
            return annotations, mask, self.hook_dec_init_state(s0)
        last = fwd[torch.arange(len(src)), mask.sum(1) - 1]  # (B, n): h_T, the state after the last real token
        c = self.hook_enc_summary(torch.tanh(self.summary(last)))  # (B, n)
        return c[:, None], mask, self.hook_dec_init_state(torch.tanh(self.w_init(c)))

    def context(self, s: Tensor, memory: Tensor, keys: Tensor | None, mask: Tensor) -> tuple[Tensor, Tensor | None]:
        """c_i and α_i (B, S) from s_{i-1} (B, n); `keys` = U_a h_j, precomputed (B, S, n')."""
        if not self.cfg.attention:
            return memory[:, 0], None
        e = self.align_v(torch.tanh(self.align_w(s)[:, None] + keys)).squeeze(-1)  # (B, S), Eq. 6
        alpha = self.hook_dec_alpha(e.masked_fill(~mask, float("-inf")).softmax(dim=-1))  # (B, S)
        return torch.einsum("bs,bsd->bd", alpha, memory), alpha  # (B, 2n)

    def step(self, y_prev: Tensor, s: Tensor, memory: Tensor, keys: Tensor | None, mask: Tensor):
        """One decoder step: (logits (B, V), s_i (B, n), α_i (B, S) or None) from y_{i-1} (B,) and s_{i-1}."""
        ey = self.tgt_embed(y_prev)  # (B, m)
        c, alpha = self.context(s, memory, keys, mask)
        t = self.out_s(s) + self.out_y(ey) + self.out_c(c)  # (B, 2l), t̃_i
        t = t.view(len(t), -1, 2).max(dim=-1).values  # (B, l), maxout over pairs
        return self.out_w(t), self.dec(ey, s, c), alpha

    def forward(self, src: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor | None]:
        memory, mask, s = self.encode(src)
        keys = self.align_u(memory) if self.cfg.attention else None
        logits, alphas = [], []
        for i in range(tgt_in.shape[1]):
            out, s, alpha = self.step(tgt_in[:, i], s, memory, keys, mask)
            logits.append(out)
            alphas.append(alpha)
        align = self.hook_dec_attn(torch.stack(alphas, dim=1)) if self.cfg.attention else None  # (B, T, S)
        return torch.stack(logits, dim=1), align  # (B, T, V)

    @torch.no_grad()
    def greedy(self, src: Tensor, max_len: int) -> tuple[Tensor, Tensor | None]:
        """Greedy decoding: (B, <= max_len) token ids (EOS then PAD after the end) and the alignments."""
        memory, mask, s = self.encode(src)
        keys = self.align_u(memory) if self.cfg.attention else None
        y = torch.full((len(src),), BOS, dtype=torch.long)
        done = torch.zeros(len(src), dtype=torch.bool)
        out, alphas = [], []
        for _ in range(max_len):
            logits, s, alpha = self.step(y, s, memory, keys, mask)
            y = logits.argmax(-1).masked_fill(done, PAD)
            out.append(y)
            alphas.append(alpha)
            done |= y == EOS
            if done.all():
                break
        align = torch.stack(alphas, dim=1) if self.cfg.attention else None
        return torch.stack(out, dim=1), align


    @torch.no_grad()
    def beam(self, src: Tensor, beam: int, max_len: int, alpha: float = 0.0) -> list[int]:
        """Beam search for one source sentence src (1, S) (the paper's decoder; it used beam 12)."""
        memory, mask, s = self.encode(src)
        keys = self.align_u(memory) if self.cfg.attention else None

        def step(tokens: Tensor, s: Tensor):
            K = len(tokens)
            k = keys.expand(K, -1, -1) if keys is not None else None
            logits, s, _ = self.step(tokens, s, memory.expand(K, -1, -1), k, mask.expand(K, -1))
            return logits.log_softmax(-1), s

        return beam_search(step, s, beam, max_len, BOS, EOS, alpha)[0]


def seq2seq_loss(model: nn.Module, batch: tuple[Tensor, Tensor, Tensor], label_smoothing: float = 0.0) -> Tensor:
    """Mean next-token cross-entropy over non-pad target positions. batch = (src, tgt_in, tgt_out)."""
    src, tgt_in, tgt_out = batch
    logits = model(src, tgt_in)
    logits = logits[0] if isinstance(logits, tuple) else logits  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1), ignore_index=PAD,
                           label_smoothing=label_smoothing)
