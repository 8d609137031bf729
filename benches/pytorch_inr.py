"""Reference for `sparsefield bench inr`: the same SIREN fit step in plain PyTorch.

256×256 gray camera image (pixel centres in [-1, 1]², values 2p − 1), SIREN 2→256×3→1 with
ω₀ = 30 on every sine layer and the SIREN initialisation, Adam at 1e-4, full batch, MSE loss.
Run: python3 benches/pytorch_inr.py [--threads 2] [--steps 10]
"""
import argparse
import math
import statistics
import time

import numpy as np
import torch
from PIL import Image


class Sine(torch.nn.Module):
    def __init__(self, fan_in, fan_out, omega, first):
        super().__init__()
        self.omega = omega
        self.linear = torch.nn.Linear(fan_in, fan_out)
        bound = 1 / fan_in if first else math.sqrt(6 / fan_in) / omega
        torch.nn.init.uniform_(self.linear.weight, -bound, bound)

    def forward(self, x):
        return torch.sin(self.omega * self.linear(x))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--image", default="assets/camera.png")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    img = Image.open(args.image).convert("L").resize((256, 256), Image.LANCZOS)
    pixels = torch.tensor(np.asarray(img, dtype=np.float32) / 255.0).reshape(-1, 1)
    centres = (2 * torch.arange(256, dtype=torch.float32) + 1) / 256 - 1
    ys, xs = torch.meshgrid(centres, centres, indexing="ij")
    coords = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)
    targets = 2 * pixels - 1

    width = 256
    layers = [Sine(2, width, 30.0, True), Sine(width, width, 30.0, False), Sine(width, width, 30.0, False)]
    last = torch.nn.Linear(width, 1)
    bound = math.sqrt(6 / width) / 30.0
    torch.nn.init.uniform_(last.weight, -bound, bound)
    model = torch.nn.Sequential(*layers, last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        optimizer.zero_grad()
        loss = ((model(coords) - targets) ** 2).mean()
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    print(f"pytorch {torch.__version__}, {args.threads} threads: median {statistics.median(times):.1f} ms/step "
          f"(best {min(times):.1f}) over {args.steps} steps")


if __name__ == "__main__":
    main()
