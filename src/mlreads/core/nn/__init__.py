"""Model helpers shared by the papers: hook points and activation caches with TransformerLens names (hooks.py), beam
search for any autoregressive model (decoding.py), the next-token loss and evaluator (lm.py), and offline loading of a
transformers model for the `from_hf` converters (hf.py). Nothing here imports the training machinery."""
