"""Reference for `sparsefield bench gnn`: untrained GCN tickets (and their baselines) on Cora,
written plainly in PyTorch (autograd, torch.sparse products, float32), the lab's settings.

    python3 benches/pytorch_gnn.py [--method ugt|edge-popup|dense] [--sparsity 0.9]
                                   [--seeds 3] [--layers 2] [--hidden 256] [--threads 2]

Reads the shipped Planetoid files (assets/planetoid-cora; Python's pickle with scipy for the
sparse feature rows, numpy for the labels) and applies Planetoid's rules (test rows reordered by
test.index, the public 140/500/1000 split). Per seed it prints the test accuracy at the best
validation epoch and the wall time of the 400 epochs; the last line is the mean.

The network: row-normalised features, Â = D^-½ (A + I) D^-½, layers Â H W without biases,
ReLU between them. Masked methods keep the weights as drawn (Kaiming uniform) and train one
score per weight (Kaiming uniform too) with a straight-through mask: UGT keeps the scores above
one threshold over all layers, rising linearly from sparsity 0 to the target over the first half;
edge-popup keeps each layer's top share from the start. Dense training uses dropout 0.5 and weight
decay 5e-4. AdamW at 0.01; every state (before each step, and the last) is scored at the target sparsity,
without dropout, as `sparsefield gnn train` scores them.
"""

import argparse
import pathlib
import pickle
import sys
import time

import numpy as np
import torch

CORA = pathlib.Path(__file__).resolve().parent.parent / "assets" / "planetoid-cora"


def load(name="cora", folder=CORA):
    def read(part):
        with open(folder / f"ind.{name}.{part}", "rb") as f:
            return pickle.load(f, encoding="latin1")

    x, tx, allx = read("x"), read("tx"), read("allx")
    y, ty, ally = read("y"), read("ty"), read("ally")
    graph = read("graph")
    test_index = [int(line) for line in open(folder / f"ind.{name}.test.index")]
    order = np.sort(test_index)
    features = np.vstack([allx.toarray(), tx.toarray()]).astype(np.float32)
    labels = np.vstack([ally, ty]).argmax(1)
    features[test_index] = features[order]
    labels[test_index] = labels[order]
    n = features.shape[0]
    features /= np.maximum(features.sum(1, keepdims=True), 1e-12)
    pairs = {(a, b) for a, nbrs in graph.items() for b in nbrs if a != b and a < n and b < n}
    pairs |= {(b, a) for a, b in pairs}
    pairs |= {(i, i) for i in range(n)}
    rows, cols = np.array(sorted(pairs)).T
    degree = np.bincount(rows, minlength=n).astype(np.float32)
    scale = 1.0 / np.sqrt(degree)
    values = scale[rows] * scale[cols]
    adjacency = torch.sparse_coo_tensor(np.vstack([rows, cols]), values, (n, n)).coalesce().to_sparse_csr()
    split = (torch.arange(y.shape[0]), torch.arange(y.shape[0], y.shape[0] + 500), torch.tensor(order))
    return torch.tensor(features).to_sparse_csr(), adjacency, torch.tensor(labels), split


class StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, scores, threshold):
        return (scores >= threshold).float()

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def kth(values, share):
    """The (k+1)-th smallest, k = round(share·(n−1)): the smallest of the n−k largest (topk is
    faster than kthvalue on the CPU)."""
    k = int(round(share * (values.numel() - 1)))
    return values.topk(values.numel() - k, sorted=False).values.min()


def run(args, features, adjacency, labels, split, seed):
    torch.manual_seed(seed)
    train, val, test = split
    widths = [features.shape[1]] + [args.hidden] * (args.layers - 1) + [int(labels.max()) + 1]
    bounds = [(6.0 / fan_in) ** 0.5 for fan_in in widths[:-1]]
    weights = [torch.empty(a, b).uniform_(-r, r) for a, b, r in zip(widths, widths[1:], bounds)]
    dense = args.method == "dense"
    if args.init:
        # Another implementation's starting tensors: W of each layer, then its scores.
        flat = torch.from_numpy(np.fromfile(args.init, dtype="<f4"))
        shapes = list(zip(widths, widths[1:])) * (1 if dense else 2)
        if flat.numel() != sum(a * b for a, b in shapes):
            raise SystemExit(f"{args.init}: {flat.numel()} values, the network has {sum(a * b for a, b in shapes)}")
        tensors = list(torch.split(flat, [a * b for a, b in shapes]))
        weights = [t.reshape(a, b).clone() for t, (a, b) in zip(tensors, shapes)]
    if dense:
        trained = [w.requires_grad_() for w in weights]
        optimiser = torch.optim.AdamW(trained, lr=args.lr, weight_decay=5e-4)
    else:
        scores = [torch.empty(a, b).uniform_(-r, r).requires_grad_() for a, b, r in zip(widths, widths[1:], bounds)]
        if args.init:
            scores = [w.requires_grad_() for w in weights[len(scores):]]
            weights = weights[: len(scores)]
        optimiser = torch.optim.AdamW(scores, lr=args.lr, weight_decay=0.0)

    def effective(sparsity):
        if dense:
            return weights
        if sparsity <= 0.0:
            return [w * StraightThrough.apply(s, s.min()) for w, s in zip(weights, scores)]
        if args.method == "edge-popup":
            return [w * StraightThrough.apply(s, kth(s.detach().flatten(), sparsity)) for w, s in zip(weights, scores)]
        threshold = kth(torch.cat([s.detach().flatten() for s in scores]), sparsity)
        return [w * StraightThrough.apply(s, threshold) for w, s in zip(weights, scores)]

    def forward(ws, dropout):
        h = features
        for i, w in enumerate(ws):
            h = adjacency @ (h @ w)
            if i + 1 < len(ws):
                h = torch.relu(h)
                if dropout > 0:
                    h = torch.nn.functional.dropout(h, dropout)
        return h

    def accuracy(logits, nodes):
        return (logits[nodes].argmax(1) == labels[nodes]).float().mean().item()

    best_val, best_test = -1.0, 0.0

    def score(logits, epoch, loss, sparsity):
        nonlocal best_val, best_test
        val_acc = accuracy(logits, val)
        if epoch % 25 == 0 and args.verbose:
            print(epoch, loss, sparsity, accuracy(logits, train), val_acc, accuracy(logits, test))
        if val_acc > best_val:
            best_val, best_test = val_acc, accuracy(logits, test)

    target = 0.0 if dense else args.sparsity
    start = time.perf_counter()
    for epoch in range(args.epochs):
        half = args.epochs / 2
        sparsity = target * min(epoch / half, 1.0) if args.method == "ugt" else target
        dropout = 0.5 if dense else 0.0
        logits = forward(effective(sparsity), dropout)
        loss = torch.nn.functional.cross_entropy(logits[train], labels[train])
        # Every state is scored at the target sparsity without dropout: where the training pass is
        # that, its logits score the state before this step; otherwise a forward of its own does.
        if sparsity == target and dropout == 0.0:
            score(logits.detach(), epoch, loss.item(), sparsity)
        else:
            with torch.no_grad():
                score(forward(effective(target), 0.0), epoch, loss.item(), sparsity)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        score(forward(effective(target), 0.0), args.epochs, float("nan"), target)
    return best_test, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", choices=["ugt", "edge-popup", "dense"], default="ugt")
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--init", help="start from these tensors (little-endian f32: each layer's W, "
                        "then each layer's scores), to follow another implementation from the same start")
    parser.add_argument("--verbose", action="store_true", help="print the loss and accuracies every 25 epochs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load()
    accs, secs = [], []
    for seed in range(args.seeds):
        acc, seconds = run(args, *data, seed)
        accs.append(acc)
        secs.append(seconds)
        print(f"seed {seed}: test {acc:.4f}  {seconds:.2f} s", flush=True)
    print(f"{args.method} {args.sparsity} GCN, {args.layers} layers: test {np.mean(accs):.4f} ± {np.std(accs):.4f}, "
          f"{np.mean(secs):.2f} s per run")


if __name__ == "__main__":
    sys.exit(main())
