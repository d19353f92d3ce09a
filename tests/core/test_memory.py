import sys

import pytest
import torch

from mlreads.core.memory import peak_rss_growth_mb


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM reset is Linux-only")
def test_peak_growth_sees_a_transient_allocation_and_resets():
    def transient():
        x = torch.ones(64 * 2**20 // 4)  # 64 MB, touched, then freed
        return float(x[-1])

    out, big = peak_rss_growth_mb(transient)
    assert out == 1.0 and 50 < big < 200
    _, small = peak_rss_growth_mb(lambda: torch.ones(10).sum())
    assert small < 20  # the high-water mark was reset: the 64 MB peak above does not count again
