"""`ResNet.from_hf`: a transformers ResNet (`ResNetForImageClassification`, or the headless `ResNetModel`) as ours.

Every field of transformers' `ResNetConfig` is read or refused (tests/vision/test_resnet_compat.py checks each
against transformers, random init, logits <= 1e-5, gradients in train mode too):

    num_channels -> in_channels        embedding_size -> d_stem          hidden_sizes -> widths
    depths -> depths                   layer_type -> block               num_labels -> n_classes (0: headless)
    downsample_in_bottleneck -> stride_in_1x1 (the stride in the first 1x1, as the paper's Caffe model)
    downsample_in_first_stage -> downsample_first_stage (stage 0's first block strides by 2; its shortcut projects)
    hidden_act -> act_fn: transformers applies it to the stem and after each residual sum only; the activations
        inside a block are ReLU whatever hidden_act says (its ResNetConvLayer default), and ours are too.
        Refused (one line): a name outside core.nn.activations.ACTIVATIONS ("prelu", "xielu" learn parameters).
    out_features, out_indices, stage_names: read by `ResNetBackbone` only, they choose which feature maps it returns;
        the logits and pooled features of the two models accepted here do not depend on them.
    output_hidden_states, return_dict, id2label/label2id, problem_type (the loss only): no effect on the function.

Refused (one line): `ResNetBackbone` (feature maps, not logits: load its weights into a `ResNetModel`), any other
model type. The stem is always transformers' 7x7/2 convolution and 3x3/2 max pool (our "imagenet" stem) and the
shortcuts option B (transformers has no option A). The result has the transformers model's dtype, its BN running
statistics, and its mode (train or eval).
"""

from __future__ import annotations

from typing import Any

import torch

from mlreads.core.nn.activations import activation
from mlreads.core.nn.hf import hf_model as load_hf
from mlreads.vision.resnet import ResNet, ResNetConfig

_CONV_BN = {"convolution": "conv", "normalization": "bn"}


def resnet_from_hf(source: Any) -> ResNet:
    """`ResNet.from_hf`: a ResNet with the config and weights of `source` (a model or a save_pretrained folder)."""
    hf = load_hf(source, ("ResNetForImageClassification", "ResNetModel"))
    kind = type(hf).__name__
    if getattr(hf.config, "model_type", None) != "resnet" or kind not in ("ResNetForImageClassification",
                                                                          "ResNetModel"):  # fmt: skip
        raise ValueError(f"ResNet.from_hf takes ResNetForImageClassification or ResNetModel, got {kind} "
                         f"(ResNetBackbone returns feature maps: load its weights into a ResNetModel)")  # fmt: skip
    c = hf.config
    activation(c.hidden_act, "hidden_act")  # refuses a name we cannot reproduce, in one line naming the field
    headless = kind == "ResNetModel" or c.num_labels == 0  # the latter's classifier is an Identity
    cfg = ResNetConfig(stem="imagenet", block=c.layer_type, depths=tuple(c.depths), widths=tuple(c.hidden_sizes),
                       d_stem=c.embedding_size, shortcut="B", in_channels=c.num_channels,
                       n_classes=0 if headless else c.num_labels, stride_in_1x1=bool(c.downsample_in_bottleneck),
                       act_fn=c.hidden_act, downsample_first_stage=bool(c.downsample_in_first_stage))  # fmt: skip
    with torch.device("meta"):  # no init work and no draw from the global RNG: every tensor is loaded below
        model = ResNet(cfg)
    sd = {k: v.detach().clone() for k, v in hf.state_dict().items()}
    model.load_state_dict(hf_state_dict_to_ours(sd, "resnet." if kind != "ResNetModel" else ""), strict=True,
                          assign=True)  # fmt: skip
    return model.train(hf.training)


def hf_state_dict_to_ours(sd: dict, prefix: str) -> dict:
    """Rename transformers' ResNet keys (embedder.embedder.convolution, encoder.stages.i.layers.j.layer.k, ...)."""
    out = {}
    for key, value in sd.items():
        k = key.removeprefix(prefix)
        parts = k.split(".")
        if k.startswith("embedder.embedder."):
            new = f"stem_{_CONV_BN[parts[2]]}.{'.'.join(parts[3:])}"
        elif k.startswith("encoder.stages."):
            i, j = parts[2], parts[4]
            rest = parts[5:]
            if rest[0] == "shortcut":
                new = f"stages.{i}.{j}.shortcut.{_CONV_BN[rest[1]]}.{'.'.join(rest[2:])}"
            else:  # layer.<idx>.<convolution|normalization>.<param>
                n = int(rest[1]) + 1
                new = f"stages.{i}.{j}.{_CONV_BN[rest[2]]}{n}.{'.'.join(rest[3:])}"
        elif key.startswith("classifier.1."):
            new = f"fc.{parts[-1]}"
        else:
            continue
        out[new] = value
    return out
