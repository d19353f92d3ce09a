"""The Mamba experiments' shared pieces: the curriculum, its validation, and the memory-horizon diagnostic."""

import math

import pytest
import torch

from mlreads.core.data.synthetic import induction_heads
from mlreads.mamba.exp_common import (
    InductionTask,
    induction_test,
    memory_horizon,
    param_groups,
    stage,
    worst_length,
)
from mlreads.mamba.exp_induction_extrapolation import InductionConfig
from mlreads.mamba.exp_selective_copying import CopyingConfig
from mlreads.mamba.model import MambaConfig, MambaLM


def test_stage_splits_the_run_into_equal_parts():
    assert [stage(s, 100, 4) for s in (0, 24, 25, 49, 50, 75, 99, 100)] == [0, 0, 1, 1, 2, 3, 3, 3]
    assert [stage(s, 10, 1) for s in range(10)] == [0] * 10


def test_curriculum_must_end_on_the_task():
    InductionConfig(curriculum=(32, 64, 256))
    with pytest.raises(ValueError, match="end at"):
        InductionConfig(curriculum=(32, 64, 128))
    with pytest.raises(ValueError, match="<= train_len"):
        InductionConfig(curriculum=(512, 256))
    CopyingConfig(curriculum_len=(32, 256), curriculum_mem=(4, 16))
    with pytest.raises(ValueError, match="same number"):
        CopyingConfig(curriculum_len=(32, 256), curriculum_mem=(16,))
    with pytest.raises(ValueError, match="end at"):
        CopyingConfig(curriculum_len=(32, 256), curriculum_mem=(4, 8))
    with pytest.raises(ValueError, match="curriculum_mem <= curriculum_len"):
        CopyingConfig(curriculum_len=(8, 256), curriculum_mem=(16, 16))


def test_a_log_is_never_decayed():
    m = MambaLM(MambaConfig(d_vocab=8, d_model=16, n_layers=2, d_state=4))
    decayed, rest = param_groups(m, 0.1)
    names = {id(p): n for n, p in m.named_parameters()}
    assert not any(names[id(p)].endswith("A_log") for p in decayed["params"])
    assert decayed["weight_decay"] == 0.1 and rest["weight_decay"] == 0.0
    assert len(decayed["params"]) + len(rest["params"]) == len(list(m.parameters()))


def test_memory_horizon_is_one_over_the_slowest_decay():
    m = MambaLM(MambaConfig(d_vocab=8, d_model=16, n_layers=2, d_state=4)).eval()
    with torch.no_grad():
        for i, block in enumerate(m.blocks):
            mix = block.mixer
            mix.dt_proj.weight.zero_()  # Δ = softplus(bias), the same at every position
            mix.dt_proj.bias.fill_(-3.0 - i)
            mix.A_log.copy_(torch.log(torch.arange(1, 5.0)).expand_as(mix.A_log))  # |A| = 1..4, slowest 1
    x, _ = induction_heads(2, 40, 8, torch.Generator().manual_seed(0))
    got = memory_horizon(m, x)
    want = [1 / math.log1p(math.exp(-3.0 - i)) for i in range(2)]
    assert got == pytest.approx(want, rel=1e-5)


class _Oracle(torch.nn.Module):
    """Recalls the token after the first special token (vocab - 1): right every time, or `shift` tokens off."""

    def __init__(self, vocab: int, shift: int = 0):
        super().__init__()
        self.vocab, self.shift, self.batches = vocab, shift, []

    def forward(self, x):
        self.batches.append(x.shape)
        p = (x == self.vocab - 1).int().argmax(1)  # the first special token
        recalled = (x[torch.arange(x.shape[0]), p + 1] + self.shift) % (self.vocab - 1)
        logits = torch.zeros(*x.shape, self.vocab)
        logits[torch.arange(x.shape[0]), -1, recalled] = 1.0
        return logits


def test_the_powered_induction_test_counts_fresh_sequences_in_bounded_passes():
    task = InductionTask(vocab=16, n_test=50, eval_batch_tokens=2**10)
    oracle = _Oracle(16)
    r = induction_test("acc", oracle, task, 256, torch.Generator().manual_seed(0))
    assert r["acc"] == 100 and r["acc_n"] == 50 and r["acc_ci"][0] < 99  # 50 of 50 cannot clear 99% by 2 s.e.
    assert {s[0] for s in oracle.batches} == {4, 2} and all(s[1] == 256 for s in oracle.batches)  # 1024 / 256 per pass
    wrong = induction_test("acc", _Oracle(16, shift=1), task, 64, torch.Generator().manual_seed(0), distance=63)
    assert wrong["acc"] == 0 and wrong["acc_ci"][1] < 10
    assert induction_test("acc", oracle, InductionTask(n_test=400), 64, torch.Generator())["acc_ci"][0] >= 99


def test_the_worst_length_decides_with_its_own_interval():
    results = {64: {"a": 100.0, "a_se": 0.0, "a_ci": [99.0, 100.0]}, 128: {"a": 97.0, "a_se": 0.8, "a_ci": [95, 98.3]}}
    assert worst_length(results, "a") == {"min_a": 97.0, "min_a_se": 0.8, "min_a_ci": [95, 98.3], "min_a_len": 128}
