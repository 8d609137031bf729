"""Reference for `sparsefield bench insp`: the derivative stack and one operator step in PyTorch.

Derivative stack: SIREN 2→256×3→1 (ω₀ = 30, SIREN initialisation) at 65,536 points, every
distinct partial ∂ⁱ⁺ʲf/∂xⁱ∂yʲ with i + j ≤ 4 (15 per channel) by nested autograd
(`torch.autograd.grad(..., create_graph=True)`), the way INSP-Net's code obtains them; each
order-n partial comes from the gradient of one order-(n−1) partial.
Operator step: MLP 15→256×4→1 (ReLU), Adam, a batch of 4096 rows, MSE loss.
Run: python3 benches/pytorch_insp.py [--threads 2] [--points 65536] [--chunk 16384]
"""
import argparse
import math
import statistics
import time

import torch


def siren(width=256, omega=30.0):
    layers = []
    for index, (fan_in, fan_out) in enumerate([(2, width), (width, width), (width, width)]):
        linear = torch.nn.Linear(fan_in, fan_out)
        bound = 1 / fan_in if index == 0 else math.sqrt(6 / fan_in) / omega
        torch.nn.init.uniform_(linear.weight, -bound, bound)
        layers.append(linear)
    last = torch.nn.Linear(width, 1)
    torch.nn.init.uniform_(last.weight, -math.sqrt(6 / width) / omega, math.sqrt(6 / width) / omega)

    def forward(x):
        for linear in layers:
            x = torch.sin(omega * linear(x))
        return last(x)

    return forward


def stack(f, coords, order):
    coords = coords.clone().requires_grad_(True)
    value = f(coords)
    partials = {(0, 0): value}
    previous = [(0, 0)]
    for n in range(1, order + 1):
        current = []
        for (i, j) in previous:
            need_x, need_y = (i + 1, j) not in partials, (i, j + 1) not in partials
            if not (need_x or need_y):
                continue
            grad = torch.autograd.grad(partials[(i, j)].sum(), coords, create_graph=n < order, retain_graph=True)[0]
            if need_x:
                partials[(i + 1, j)] = grad[:, :1]
                current.append((i + 1, j))
            if need_y:
                partials[(i, j + 1)] = grad[:, 1:]
                current.append((i, j + 1))
        previous = current
    return torch.cat([partials[(n - j, j)] for n in range(order + 1) for j in range(n + 1)], dim=1).detach()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--points", type=int, default=65536)
    parser.add_argument("--chunk", type=int, default=16384)
    parser.add_argument("--order", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    f = siren()
    coords = torch.rand(args.points, 2) * 2 - 1

    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = [stack(f, chunk, args.order) for chunk in coords.split(args.chunk)]
        times.append(time.perf_counter() - start)
    print(f"pytorch {torch.__version__}, {args.threads} threads: derivative stack, {args.points} points, "
          f"order {args.order} ({out[0].shape[1]} partials): median {statistics.median(times):.2f} s "
          f"(best {min(times):.2f})")

    features = 15
    layers = [torch.nn.Linear(features, 256)] + [torch.nn.Linear(256, 256) for _ in range(3)] + [torch.nn.Linear(256, 1)]
    mlp = torch.nn.Sequential(*[m for layer in layers[:-1] for m in (layer, torch.nn.ReLU())], layers[-1])
    optimizer = torch.optim.Adam(mlp.parameters(), lr=1e-3)
    x, y = torch.randn(4096, features), torch.randn(4096, 1)
    step_times = []
    for k in range(25):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = ((mlp(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        if k >= 5:
            step_times.append((time.perf_counter() - start) * 1e3)
    print(f"operator step 15→256×4→1, batch 4096: median {statistics.median(step_times):.1f} ms")


if __name__ == "__main__":
    main()
