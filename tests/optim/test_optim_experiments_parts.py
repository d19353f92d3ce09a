"""Small parts of the optimiser experiments."""

import pytest

from mlreads.optim.exp_common import lr_grid


def test_lr_grid_parses_the_settable_form_and_refuses_junk():
    assert lr_grid(("adam:1e-3/3e-3", "adagrad:0.01")) == [("adam", (1e-3, 3e-3)), ("adagrad", (0.01,))]
    for bad in ("adam", "adam:", ":1e-3", "adam:x", "adam:-1e-3", "adam:0"):
        with pytest.raises(ValueError, match="optimiser:lr"):
            lr_grid((bad,))
