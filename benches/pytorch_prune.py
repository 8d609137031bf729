"""Reference timing for `sparsefield bench prune`: the random-pruning theory sweep written plainly
in PyTorch (autograd, full-batch gradient descent, float32), the same sizes as the default sweep.

    python3 benches/pytorch_prune.py [--seeds 5] [--threads 2]
    python3 benches/pytorch_prune.py --digits [--epochs 20]

Prints the sweep's wall time and each fraction's mean test accuracy; with --digits, the time of
one training epoch of the dense digits MLP (64→100→100→10, Adam 1e-3, batch 64, the 1438
training digits) instead.
"""

import argparse
import gzip
import time

import torch

FRACTIONS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.95,
             0.96, 0.97, 0.98, 0.99]


def data(gen, n, d, mu):
    y = torch.where(torch.rand(n, generator=gen) < 0.5, 1.0, -1.0)
    xi = torch.randn(n, d, generator=gen)
    xi -= (xi @ mu)[:, None] * mu[None, :] / (mu @ mu)
    return y, xi


def run(args, p, seed):
    gen = torch.Generator().manual_seed(seed)
    d, m = args.dim, args.width
    mu = torch.zeros(d)
    mu[0] = args.signal_norm
    y, xi = data(gen, args.n_train, d, mu)
    yt, xit = data(gen, args.n_test, d, mu)
    mask = (torch.rand(2 * m, d, generator=gen) >= p).float()
    w = (args.init_std * torch.randn(2 * m, d, generator=gen) * mask).requires_grad_()
    sign = torch.cat([torch.ones(m), -torch.ones(m)])

    def f(w, labels, noise):
        v = w * mask
        signal = torch.relu(labels[:, None] * (v @ mu)[None, :]) ** args.power
        noisy = torch.relu(noise @ v.T) ** args.power
        return ((signal + noisy) * sign[None, :]).sum(1) / m

    for _ in range(args.steps):
        loss = torch.nn.functional.softplus(-y * f(w, y, xi)).mean()
        (grad,) = torch.autograd.grad(loss, w)
        with torch.no_grad():
            w -= args.lr * grad
    with torch.no_grad():
        return ((f(w, yt, xit) > 0).float() * 2 - 1 == yt).float().mean().item(), loss.item()


def digits_epoch(args):
    rows = [line.split(",") for line in gzip.open("assets/digits.csv.gz", "rt") if line.strip()]
    x = torch.tensor([[float(v) / 16 for v in row[:64]] for row in rows])
    y = torch.tensor([int(float(row[64])) for row in rows])
    x, y = x[:1438], y[:1438]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 100), torch.nn.ReLU(), torch.nn.Linear(100, 100),
                                torch.nn.ReLU(), torch.nn.Linear(100, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for _ in range(args.epochs):
        order = torch.randperm(len(x))
        for batch in order.split(64):
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    ms = 1000 * (time.perf_counter() - start) / args.epochs
    print(f"digits MLP: {ms:.1f} ms per epoch over {args.epochs} epochs")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dim", type=int, default=2000)
    parser.add_argument("--n-train", type=int, default=40)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--width", type=int, default=20)
    parser.add_argument("--power", type=int, default=3)
    parser.add_argument("--signal-norm", type=float, default=12.0)
    parser.add_argument("--init-std", type=float, default=0.01)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--digits", action="store_true")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.digits:
        digits_epoch(args)
        return
    start = time.perf_counter()
    for p in FRACTIONS:
        results = [run(args, p, seed) for seed in range(args.seeds)]
        accuracy = sum(r[0] for r in results) / len(results)
        loss = sum(r[1] for r in results) / len(results)
        print(f"p = {p:.2f}: test accuracy {100 * accuracy:.1f}%, train loss {loss:.2e}", flush=True)
    seconds = time.perf_counter() - start
    print(f"{len(FRACTIONS) * args.seeds} runs in {seconds:.2f} s ({1000 * seconds / (len(FRACTIONS) * args.seeds):.0f} ms per run)")


if __name__ == "__main__":
    main()
