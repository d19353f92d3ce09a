"""The Mamba experiments' shared pieces: the curriculum, its validation, and the memory-horizon diagnostic."""

import math

import pytest
import torch

from mlreads.core.data.synthetic import induction_heads
from mlreads.mamba.exp_common import memory_horizon, param_groups, stage
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
