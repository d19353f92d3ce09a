"""mlreads: the ideas of modern ML as running code, with parity tests and re-measured claims.

    import mlreads
    models = mlreads.load_run("runs/gpt/char-lm/quick-s0")   # {arm: trained model in eval mode}
    logits, cache = models["gpt"].run_with_cache(idx)

`load_run` and `load_saved` (each arm with its config and meta, e.g. a language model's vocabulary) read what a run
saved in its folder (core/run/saved.py); they import torch on first use, so `import mlreads` stays light.
"""

__version__ = "0.1.0"


def load_run(run_dir, arm=None):
    """The trained models of a run folder: {arm: nn.Module}, rebuilt from their saved configs and weights, in eval
    mode and ready for `run_with_cache`; `arm` loads one. Bad input raises `mlreads.core.run.saved.SavedModelError`
    (one line naming the file)."""
    from mlreads.core.run.saved import load_run as _load_run

    return _load_run(run_dir, arm)


def load_saved(run_dir, arm=None):
    """Like `load_run`, but {arm: SavedModel}: `.model`, `.cls`, `.config`, `.meta`, and `.encode` / `.decode` for a
    language model's saved vocabulary."""
    from mlreads.core.run.saved import load_saved as _load_saved

    return _load_saved(run_dir, arm)
