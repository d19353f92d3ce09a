"""Loading a transformers model from a local folder for the `from_hf` constructors; never from a hub.

`from_hf(source)` takes a transformers model object or the path of a folder written by `save_pretrained`. A name that
is not a local folder (a hub id such as "gpt2") is refused with one line: nothing is downloaded at run time. A
converter that takes several classes (a headless model or one with its head) names them all; the folder's
config.json `architectures` picks among them, so a saved `ResNetModel` is not reloaded with a random head.
"""

from __future__ import annotations

import json
import os
from typing import Any


def hf_model(source: Any, class_name: str | tuple[str, ...]) -> Any:
    """`source` itself when it is a model; else `transformers.<class_name>` loaded offline from the local folder
    (with several names: the one the folder's config.json lists under `architectures`, else the first)."""
    if not isinstance(source, str | os.PathLike):
        return source
    if not os.path.isdir(source):
        raise ValueError(f"{os.fspath(source)!r} is not a local folder: from_hf never downloads from a hub; pass a "
                         f"transformers model or a folder written by save_pretrained()")
    import transformers

    names = (class_name,) if isinstance(class_name, str) else class_name
    config, saved = os.path.join(source, "config.json"), []
    if os.path.isfile(config):
        with open(config) as f:
            saved = json.load(f).get("architectures") or []
    class_name = next((n for n in saved if n in names), names[0])
    return getattr(transformers, class_name).from_pretrained(os.fspath(source), local_files_only=True)
