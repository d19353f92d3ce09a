"""Training throughput of mlreads.vision's AlexNet and ResNet-18 against the same models written plainly in torch.

AlexNet: our `AlexNet(AlexNetConfig.mnist())` (28x28, LRN, groups=2, dropout) against an nn.Sequential twin written
here with torch's own layers (nn.LocalResponseNorm with alpha * n), weights copied so both compute the same function.
ResNet-18: our `ResNet` against HF transformers' `ResNetForImageClassification` with the same weights (`from_hf`).
One thread, SGD + momentum, forward + backward + step; the two models of a pair alternate in rounds and the median
round time is reported, so machine load affects both alike. Run: `python benchmarks/vision_throughput.py`.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from mlreads.vision import AlexNet, AlexNetConfig, ResNet


def plain_alexnet(ours: AlexNet) -> nn.Module:
    c = ours.cfg
    lrn = lambda: nn.LocalResponseNorm(c.lrn_n, alpha=c.lrn_alpha * c.lrn_n, beta=c.lrn_beta, k=c.lrn_k)
    net = nn.Sequential(
        nn.Conv2d(c.in_channels, c.widths[0], c.conv1_kernel, c.conv1_stride, c.conv1_padding), nn.ReLU(), lrn(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(c.widths[0], c.widths[1], 5, padding=2, groups=c.groups), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(c.widths[1], c.widths[2], 3, padding=1), nn.ReLU(),
        nn.Conv2d(c.widths[2], c.widths[3], 3, padding=1, groups=c.groups), nn.ReLU(),
        nn.Conv2d(c.widths[3], c.widths[4], 3, padding=1, groups=c.groups), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Flatten(), nn.Linear(c.d_flat, c.d_fc), nn.ReLU(), nn.Dropout(c.dropout),
        nn.Linear(c.d_fc, c.d_fc), nn.ReLU(), nn.Dropout(c.dropout), nn.Linear(c.d_fc, c.n_classes),
    )  # fmt: skip
    src = [ours.conv1, ours.conv2, ours.conv3, ours.conv4, ours.conv5, ours.fc6, ours.fc7, ours.fc8]
    dst = [m for m in net if isinstance(m, nn.Conv2d | nn.Linear)]
    for a, b in zip(src, dst):
        b.load_state_dict(a.state_dict())
    return net


def step_time(model: nn.Module, x: torch.Tensor, y: torch.Tensor, logits, n: int) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    t0 = time.perf_counter()
    for _ in range(n):
        loss = F.cross_entropy(logits(model, x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / n


def compare(name: str, ours, peer, x, y, logits_ours, logits_peer, rounds: int = 5, n: int = 3) -> None:
    for m, f in ((ours, logits_ours), (peer, logits_peer)):  # warm-up
        step_time(m, x, y, f, 1)
    t_ours, t_peer = [], []
    for _ in range(rounds):
        t_ours.append(step_time(ours, x, y, logits_ours, n))
        t_peer.append(step_time(peer, x, y, logits_peer, n))
    a, b = statistics.median(t_ours), statistics.median(t_peer)
    print(f"{name}: ours {len(x) / a:.0f} img/s, peer {len(x) / b:.0f} img/s, ours/peer throughput {b / a:.2f}x")


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    ours = AlexNet(AlexNetConfig.mnist(init="kaiming"))
    plain = plain_alexnet(ours)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    ours.eval(), plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), plain(x), rtol=1e-5, atol=1e-5)  # the same function
    ours.train(), plain.train()
    compare("AlexNet (28x28 scaled, B64)", ours, plain, x, y, lambda m, v: m(v), lambda m, v: m(v))

    import transformers

    hf = transformers.ResNetForImageClassification(transformers.ResNetConfig(layer_type="basic", depths=[2, 2, 2, 2],
                                                                             hidden_sizes=[64, 128, 256, 512],
                                                                             num_labels=1000))
    ours_r = ResNet.from_hf(hf)
    x, y = torch.randn(16, 3, 64, 64), torch.randint(0, 1000, (16,))
    compare("ResNet-18 (64x64, B16)", ours_r, hf, x, y, lambda m, v: m(v), lambda m, v: m(pixel_values=v).logits)


if __name__ == "__main__":
    main()
