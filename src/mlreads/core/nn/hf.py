"""Loading a transformers model from a local folder for the `from_hf` constructors; never from a hub.

`from_hf(source)` takes a transformers model object or the path of a folder written by `save_pretrained`. A name that
is not a local folder (a hub id such as "gpt2") is refused with one line: nothing is downloaded at run time.
"""

from __future__ import annotations

import os
from typing import Any


def hf_model(source: Any, class_name: str) -> Any:
    """`source` itself when it is a model; else `transformers.<class_name>` loaded offline from the local folder."""
    if not isinstance(source, str | os.PathLike):
        return source
    if not os.path.isdir(source):
        raise ValueError(f"{os.fspath(source)!r} is not a local folder: from_hf never downloads from a hub; pass a "
                         f"transformers model or a folder written by save_pretrained()")
    import transformers

    return getattr(transformers, class_name).from_pretrained(os.fspath(source), local_files_only=True)
