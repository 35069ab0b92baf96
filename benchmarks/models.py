"""Model cost at default spec widths: parameters, forward+backward time and peak memory.

Every family/configuration runs in a fresh subprocess (so peak memory is its own) on a
batch of 2 random 256x256 samples: warm-up, then the median of ``--reps`` timed
forward+backward passes, reported per sample. One JSON line per model, then one ratio
line per (student, teacher) pair of SAR-KD, the obvious alternative a student replaces,
and FLoRA SAR-only versus with the optical prior.

Usage: python benchmarks/models.py [--reps 3] [--size 256] [--threads 0] [--only KEY ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

# name -> (model spec as a dict, workload); default widths everywhere.
CONFIGS: dict[str, dict[str, Any]] = {
    "flora": {"kind": "flora"},
    "flora_sar_only": {"kind": "flora"},
    "resunet": {"kind": "resunet"},
    "sarkd_unet": {"kind": "sarkd", "arch": "unet"},
    "sarkd_pspnet": {"kind": "sarkd", "arch": "pspnet"},
    "sarkd_mlp_256": {"kind": "sarkd", "arch": "mlp_256"},
    "sarkd_unet_light": {"kind": "sarkd", "arch": "unet_light"},
    "sarkd_psp_mixer": {"kind": "sarkd", "arch": "psp_mixer"},
    "cyclegan_rgb": {"kind": "cyclegan", "bands": "rgb"},
    "cyclegan_nir_swir_re": {"kind": "cyclegan", "bands": "nir_swir_re"},
    "cyclegan_rgb_nir": {"kind": "cyclegan", "bands": "rgb_nir"},
    "cloud_unet": {"kind": "cloud_unet"},
}
# (student, teacher) pairs compared by time and parameters.
RATIOS: list[tuple[str, str]] = [
    (s, t)
    for t in ("sarkd_unet", "sarkd_pspnet")
    for s in ("sarkd_mlp_256", "sarkd_unet_light", "sarkd_psp_mixer")
] + [("flora_sar_only", "flora")]


def _maxrss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(name: str, reps: int, size: int, batch: int, device: str) -> dict[str, Any]:
    """Build one model, time forward+backward, return its JSON record."""
    import torch
    from pydantic import TypeAdapter

    from floodlab.models.blocks import num_parameters
    from floodlab.specs.model import ModelSpec, input_channels
    from floodlab.tasks import build_model

    torch.manual_seed(0)
    spec = TypeAdapter(ModelSpec).validate_python(CONFIGS[name])
    model = build_model(spec).to(device).train()
    x = torch.randn(batch, input_channels(spec), size, size, device=device)
    optical = torch.rand(batch, getattr(spec, "optical_channels", 4), size, size, device=device)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        if spec.kind == "flora":
            out = model(x, None if name == "flora_sar_only" else optical)
            loss = out["seg"].mean() + out["rgb"].mean()
        elif spec.kind == "cyclegan":
            # One generator update's graph: A->B->A cycle and both discriminators.
            fake = model.g_ab(x)
            rec = model.g_ba(fake)
            loss = (rec - x).abs().mean() + model.d_b(fake).square().mean() + model.d_a(rec).mean()
        else:
            loss = model(x).mean()
        loss.backward()
        if device == "cuda":
            torch.cuda.synchronize()

    rss0 = _maxrss_mb()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step()  # warm-up (allocator, kernels)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    record: dict[str, Any] = {
        "benchmark": "models",
        "model": name,
        "params": num_parameters(model),
        "fwd_bwd_ms_per_sample": round(1000 * statistics.median(times) / batch, 1),
        "batch": batch,
        "size": size,
        "reps": reps,
        "device": device,
        "threads": torch.get_num_threads(),
    }
    if device == "cuda":
        record["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    else:
        record["peak_rss_growth_mb"] = round(_maxrss_mb() - rss0, 1)
    return record


def main() -> None:
    """Run every configuration in its own subprocess and print JSON lines and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--only", nargs="*", default=None, choices=list(CONFIGS))
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # subprocess mode
    args = parser.parse_args()

    if args.one:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        print(json.dumps(measure(args.one, args.reps, args.size, args.batch, args.device)))
        return

    records: dict[str, dict[str, Any]] = {}
    for name in args.only or list(CONFIGS):
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--one",
            name,
            *("--reps", str(args.reps), "--size", str(args.size), "--batch", str(args.batch)),
            *("--threads", str(args.threads), "--device", args.device),
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        records[name] = json.loads(out.strip().splitlines()[-1])
        print(json.dumps(records[name]), flush=True)
    for student, teacher in RATIOS:
        if student in records and teacher in records:
            s, t = records[student], records[teacher]
            print(
                json.dumps(
                    {
                        "benchmark": "models_ratio",
                        "student": student,
                        "teacher": teacher,
                        "time_ratio": round(
                            s["fwd_bwd_ms_per_sample"] / t["fwd_bwd_ms_per_sample"], 4
                        ),
                        "params_ratio": round(s["params"] / t["params"], 5),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
