"""Reference timing for `sparsefield bench htl`: the hard-sample lab's populations written plainly
in PyTorch — the same MLP (64→128→128→10, ReLU), Adam 1e-3, batch 32, 20 dense epochs on the 1438
training digits, then each model magnitude-pruned to 50% per layer and fine-tuned 5 epochs with
the mask fixed — 5 dense + 5 pruned models, trained one after another.

    python3 benches/pytorch_htl.py [--models 5] [--threads 2]

Prints the wall time of both populations, samples/s and the mean test accuracies. (The split is
the same size as the lab's but not the same draw; timing does not depend on it.)
"""

import argparse
import gzip
import os
import time

import torch


def digits():
    path = os.path.join(os.path.dirname(__file__), "..", "assets", "digits.csv.gz")
    rows = [line.split(",") for line in gzip.open(path, "rt").read().split("\n") if line.strip()]
    x = torch.tensor([[float(v) / 16.0 for v in r[:64]] for r in rows])
    y = torch.tensor([int(float(r[64])) for r in rows])
    perm = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))
    test, train = perm[:359], perm[359:]
    return x[train], y[train], x[test], y[test]


def train(model, x, y, epochs, seed, masks=None):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), 32):
            idx = order[start:start + 32]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            if masks is not None:
                for p, m in masks:
                    p.grad.mul_(m)
            opt.step()
            if masks is not None:
                with torch.no_grad():
                    for p, m in masks:
                        p.mul_(m)


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y, xt, yt = digits()
    start = time.perf_counter()
    dense_acc, pruned_acc = [], []
    for k in range(args.models):
        torch.manual_seed(k)
        model = torch.nn.Sequential(
            torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 10))
        train(model, x, y, 20, k)
        dense_acc.append(accuracy(model, xt, yt))
        masks = []
        for layer in model:
            if isinstance(layer, torch.nn.Linear):
                w = layer.weight.detach().abs().flatten()
                keep = w.argsort(descending=True)[: len(w) // 2]
                m = torch.zeros_like(w)
                m[keep] = 1.0
                masks.append((layer.weight, m.view_as(layer.weight)))
        train(model, x, y, 5, k + 1000, masks)
        pruned_acc.append(accuracy(model, xt, yt))
    seconds = time.perf_counter() - start
    samples = args.models * 25 * len(x)
    print(f"pytorch: {args.models} + {args.models} models in {seconds:.2f} s ({samples / seconds:,.0f} samples/s); "
          f"test accuracy dense {100 * sum(dense_acc) / len(dense_acc):.1f}%, pruned {100 * sum(pruned_acc) / len(pruned_acc):.1f}%")


if __name__ == "__main__":
    main()
