"""The cost of `trainer.ema_decay`: one weight-average update, against a training step.

`floodlab.train.averaging.WeightAverage.update` pairs the averaged and trained tensors once
and moves them with one fused ``torch._foreach_lerp_``. The obvious alternative builds both
networks' ``state_dict()`` and lerps tensor by tensor on every step. Both run here on the
same ResUNet of an OMBRIA spec (the CPU spec's widths by default; ``--spec`` picks
another), interleaved `--repeats` times; the medians are compared, and both are put beside
one optimiser step of the spec's batch (forward, backward, AdamW) on the same threads.

Prints one JSON line:

    {"benchmark": "weight_average", ..., "ratio": fused_update_s / state_dict_update_s}

Usage: .venv/bin/python benchmarks/weight_average.py [--spec experiments/ombria_resunet.yaml]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


@torch.no_grad()
def state_dict_update(average, weight: float) -> None:
    """The alternative: both state dicts built and lerped tensor by tensor every step."""
    for name, averaged in average.nets.items():
        trained = average.trained[name].state_dict()
        for key, value in averaged.state_dict().items():
            if value.is_floating_point():
                value.lerp_(trained[key], weight)
            else:
                value.copy_(trained[key])


def timed(fn, calls: int) -> float:
    """Median seconds of one call over `calls` calls."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Time both updates and one training step, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(ROOT / "experiments" / "ombria_resunet.yaml"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50, help="Updates per repeat.")
    args = parser.parse_args()

    from floodlab.losses import bce_loss, image_dice_loss
    from floodlab.specs import load_spec
    from floodlab.tasks import build_task
    from floodlab.train.averaging import WeightAverage

    spec = load_spec(Path(args.spec), ["trainer.ema_decay=0.999"])
    torch.manual_seed(0)
    task = build_task(spec)
    average = WeightAverage(task, decay=0.999)
    net = next(iter(average.trained.values()))
    params = sum(p.numel() for p in net.parameters())

    fused, per_tensor = [], []
    for _ in range(args.repeats):
        fused.append(timed(average.update, args.calls))
        per_tensor.append(timed(lambda: state_dict_update(average, 0.001), args.calls))

    size = spec.data.patch_size
    x = torch.randn(spec.trainer.batch_size, len(spec.data.image_bands), size, size)
    y = (torch.rand(spec.trainer.batch_size, size, size) > 0.5).float()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)

    def train_step() -> None:
        opt.zero_grad()
        logits = net(x)
        logits = logits["seg"] if isinstance(logits, dict) else logits
        (image_dice_loss(logits, y) + bce_loss(logits, y)).backward()
        opt.step()

    net.train()
    train_step()  # warm-up
    step = timed(train_step, 5)

    fused_s, per_tensor_s = statistics.median(fused), statistics.median(per_tensor)
    print(
        json.dumps(
            {
                "benchmark": "weight_average",
                "spec": Path(args.spec).name,
                "parameters": params,
                "threads": torch.get_num_threads(),
                "fused_update_ms": round(fused_s * 1e3, 3),
                "state_dict_update_ms": round(per_tensor_s * 1e3, 3),
                "train_step_ms": round(step * 1e3, 1),
                "fused_share_of_step": round(fused_s / step, 4),
                "ratio": round(fused_s / per_tensor_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
