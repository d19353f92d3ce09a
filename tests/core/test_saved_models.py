"""Saved models (core/run/saved.py): `RunContext.save_model` keeps a trained model in its run folder and
`mlreads.load_run` rebuilds it bit for bit; a run folder is input, so a missing, damaged or tampered file is refused
in one line, naming the file, before any name it holds is imported or any size it asks for is allocated.

Every registered experiment's own models are reloaded and compared bit for bit in tests/test_smoke.py; the tests here
fit a tiny model of a few families through the same path and tamper with what they wrote."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

import mlreads
from mlreads.core.run.runner import RunContext
from mlreads.core.run.saved import SavedModelError, known_classes, load_saved

sys.path.insert(0, str(Path(__file__).parents[1]))
sys.path.insert(0, str(Path(__file__).parent))
from cli_capture import assert_one_line_exit_2, run_cli  # noqa: E402
from model_inputs import assert_same_outputs  # noqa: E402


def _fit(model, batches, loss_fn, steps: int = 3):
    """A few Adam steps, so the saved weights are trained ones, not the init a rebuild would reproduce anyway."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(steps):
        opt.zero_grad()
        loss_fn(model, batches(step)).backward()
        opt.step()
    return model


def _gpt():
    from mlreads.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(d_vocab=12, n_ctx=8, n_layers=2, n_heads=2, d_model=16))
    data = lambda s: torch.randint(12, (4, 9), generator=torch.Generator().manual_seed(s))  # noqa: E731
    return _fit(model, data, lambda m, x: torch.nn.functional.cross_entropy(m(x[:, :-1]).transpose(1, 2), x[:, 1:]))


FAMILIES = {
    "gpt": _gpt,
    "circuits": lambda: _fit(*_attn_only(2)),
    "mamba": lambda: _fit(*_mamba()),
    "vision": lambda: _fit(*_resnet()),
    "generative": lambda: _fit(*_denoiser()),
    "attention": lambda: _fit(*_parametric()),
}


def _attn_only(n_layers: int):
    from mlreads.circuits import AttnOnlyConfig, AttnOnlyTransformer

    model = AttnOnlyTransformer(AttnOnlyConfig(n_layers=n_layers, d_model=16, n_heads=2, d_head=8, d_vocab=10,
                                               n_ctx=12), torch.Generator().manual_seed(0))  # fmt: skip
    data = lambda s: torch.randint(10, (4, 12), generator=torch.Generator().manual_seed(s))  # noqa: E731
    return model, data, lambda m, x: m(x).logsumexp(-1).mean()


def _mamba():
    from mlreads.mamba import MambaConfig, MambaLM

    torch.manual_seed(0)
    model = MambaLM(MambaConfig(d_vocab=10, d_model=16, n_layers=1, d_state=4))
    data = lambda s: torch.randint(10, (2, 8), generator=torch.Generator().manual_seed(s))  # noqa: E731
    return model, data, lambda m, x: m(x).logsumexp(-1).mean()


def _resnet():
    from mlreads.vision import ResNet, ResNetConfig

    torch.manual_seed(0)
    model = ResNet(ResNetConfig.cifar(1, width=4, in_channels=1)).to(memory_format=torch.channels_last)
    data = lambda s: torch.rand(4, 1, 14, 14, generator=torch.Generator().manual_seed(s))  # noqa: E731
    return model, data, lambda m, x: m(x).logsumexp(-1).mean()  # trains batch-norm statistics too


def _denoiser():
    from mlreads.generative import DenoiserConfig, MLPDenoiser

    torch.manual_seed(0)
    model = MLPDenoiser(DenoiserConfig(d_data=4, d_hidden=16, n_layers=2, d_time=8))
    data = lambda s: torch.randn(8, 4, generator=torch.Generator().manual_seed(s))  # noqa: E731
    return model, data, lambda m, x: m(x, torch.arange(1, 9)).pow(2).mean()


def _parametric():
    from mlreads.attention import ParametricAttention

    model = ParametricAttention(1.0).double()
    data = lambda s: torch.rand(6, generator=torch.Generator().manual_seed(s), dtype=torch.float64)  # noqa: E731
    return model, data, lambda m, x: (m(x, x, x.sin(), exclude_self=True) - x.sin()).pow(2).mean()


def _save(tmp_path: Path, arm: str, model, **meta) -> Path:
    """Save through the runner's own path (a RunContext on a fresh run folder); return the run folder."""
    ctx = RunContext(tmp_path / "run", "smoke", 0, 1)
    ctx.save_model(arm, model, **meta)
    ctx.close()
    return tmp_path / "run"


@pytest.mark.parametrize("family", FAMILIES)
def test_a_trained_model_reloads_bit_for_bit(family, tmp_path):
    model = FAMILIES[family]()
    run = _save(tmp_path, family, model, note="kept")
    saved = load_saved(run)[family]
    assert not saved.model.training and saved.meta == {"note": "kept"}
    assert saved.config == model.cfg and type(saved.model) is type(model)
    assert_same_outputs(saved.cls, model, saved.model, saved.meta)
    assert set(mlreads.load_run(run)) == {family}
    assert hasattr(mlreads.load_run(run)[family], "run_with_cache")


def test_the_registry_names_each_class_once_with_a_frozen_config():
    # the registry is explicit: every entry names a class and its frozen config, and each class keeps its config
    import dataclasses

    from mlreads.core.run.saved import loadable

    assert "gpt.GPT" in known_classes() and "generative.MLPDenoiser" in known_classes()
    assert len(known_classes()) == len(set(known_classes()))
    for name in known_classes():
        config = loadable(name).config
        assert dataclasses.is_dataclass(config) and config.__dataclass_params__.frozen, name


def test_loading_leaves_the_global_rng_alone(tmp_path):
    run = _save(tmp_path, "gpt", _gpt())
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    mlreads.load_run(run)
    assert torch.equal(torch.rand(3), expected)


def test_a_new_run_clears_the_models_of_the_last(tmp_path):
    run = _save(tmp_path, "old-arm", _gpt())
    ctx = RunContext(run, "smoke", 0, 1)  # the next run in the same folder
    ctx.save_model("new-arm", _gpt())
    ctx.close()
    assert list(mlreads.load_run(run)) == ["new-arm"]


def test_save_model_refuses_what_could_not_be_loaded_back(tmp_path):
    ctx = RunContext(tmp_path / "run", "smoke", 0, 1)
    with pytest.raises(TypeError, match="LOADABLE"):
        ctx.save_model("linear", torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="plain name"):
        ctx.save_model("../escape", _gpt())
    with pytest.raises(TypeError):
        ctx.save_model("gpt", _gpt(), tokens={1, 2})  # not JSON
    ctx.close()


# ---------------------------------------------------------------------------------------------- tampered folders


@pytest.fixture()
def run(tmp_path) -> Path:
    return _save(tmp_path, "gpt", _gpt(), tokens=[chr(97 + i) for i in range(12)], joiner="")


def _card(run: Path) -> dict:
    return json.loads((run / "models" / "gpt.json").read_text())


def _write_card(run: Path, spec: dict) -> None:
    (run / "models" / "gpt.json").write_text(json.dumps(spec))


def _refused(run: Path, *names: str) -> str:
    with pytest.raises(SavedModelError) as err:
        mlreads.load_run(run)
    msg = str(err.value)
    assert "\n" not in msg and all(n in msg for n in names), msg
    code, _, stderr = run_cli(["inspect", str(run)])  # the CLI: exit 2, one line, no traceback
    assert_one_line_exit_2(code, stderr)
    return msg


def _set_config(run: Path, **changes) -> None:
    spec = _card(run)
    spec["config"].update(changes)
    _write_card(run, spec)


def test_a_class_no_package_declares_is_refused_and_never_imported(run):
    assert "tabnanny" not in sys.modules
    for name in ("tabnanny.Anything", "os.system", "gpt.GPTConfig", "gpt.", "subprocess.Popen"):
        spec = _card(run)
        spec["class"] = name
        _write_card(run, spec)
        assert "not a loadable mlreads model" in _refused(run, "gpt.json")
    assert "tabnanny" not in sys.modules


@pytest.mark.parametrize("change, words", [
    ({"n_layers": 3}, "has no tensor"),  # the weights were trained with 2 layers
    ({"d_model": 32}, "needs F32"),  # shapes differ
    ({"d_model": 2**20, "n_heads": 1}, "needs F32"),  # 4 TB of weights: refused on the meta device, never allocated
    ({"n_heads": "2"}, "n_heads"),  # not an int
    ({"n_heads": 3}, "refuses it"),  # GPTConfig's own rule: heads divide d_model
    ({"no_such_field": 1}, "no field"),
    ({"gelu": "relu"}, "gelu"),  # not one of the Literal's choices
])  # fmt: skip
def test_a_config_that_does_not_fit_its_weights_is_refused(run, change, words):
    _set_config(run, **change)
    _refused(run, "gpt.json" if words in ("n_heads", "refuses it", "no field", "gelu") else "gpt.safetensors", words)


@pytest.mark.parametrize("damage", ["missing", "pickle", "truncated", "link"])
def test_a_damaged_weights_file_is_refused(run, damage, tmp_path):
    weights = run / "models" / "gpt.safetensors"
    if damage == "missing":
        weights.unlink()
    elif damage == "pickle":
        torch.save({"wte.weight": torch.zeros(2)}, weights)  # a torch.save file in its place: never unpickled
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:-100])
    else:
        other = tmp_path / "elsewhere.safetensors"
        weights.rename(other)
        weights.symlink_to(other)
    _refused(run, "gpt.safetensors")


@pytest.mark.parametrize("damage", ["not json", "a list", "old format", "arm", "dtype", "meta"])
def test_a_damaged_card_is_refused(run, damage):
    spec = _card(run)
    if damage == "not json":
        (run / "models" / "gpt.json").write_text("{not json")
    else:
        if damage == "a list":
            spec = [spec]
        elif damage == "old format":
            spec["format"] = "mlreads-model/0"
        elif damage == "arm":
            spec["arm"] = "other"
        elif damage == "dtype":
            spec["dtype"] = "complex128"
        else:
            spec["meta"] = "x"
        _write_card(run, spec)
    _refused(run, "gpt.json")


def test_a_folder_without_models_or_without_that_arm_says_so(run, tmp_path):
    (tmp_path / "empty").mkdir()
    _refused(tmp_path / "empty", "no saved models")
    _refused(tmp_path / "nowhere", "no such run folder")
    with pytest.raises(SavedModelError, match="no saved arm 'x'; it has gpt"):
        mlreads.load_run(run, "x")
