"""Reference timing for `sparsefield bench gan`: two-dimensional neighbourhood attention (NATTEN's
windows: per dilation subgrid, shifted inward at the borders; a relative-position bias per head)
written plainly in PyTorch: each query's k×k keys gathered by an index table (what unfold does,
with the borders' windows shifted instead of padded), logits, softmax and the weighted sum, and
autograd for the backward.

    python3 benches/pytorch_na.py [--size 32] [--channels 64] [--heads 4] [--kernel 7]
                                  [--dilation 1] [--batch 1] [--repeats 20] [--threads 2]

Prints the median milliseconds of one forward + backward.
"""

import argparse
import statistics
import time

import torch


def axis_windows(n, k, d):
    """Per position: the first key and the first key's bias offset along one axis."""
    firsts, offsets = [], []
    for i in range(n):
        residue, sub = i % d, i // d
        sub_len = len(range(residue, n, d))
        start = min(max(sub - k // 2, 0), sub_len - k)
        firsts.append(residue + start * d)
        offsets.append(start + k - 1 - sub)
    return firsts, offsets


def tables(h, w, k, d):
    """Key pixel and bias index per (query pixel, window slot)."""
    ys, bys = axis_windows(h, k, d)
    xs, bxs = axis_windows(w, k, d)
    t = torch.arange(k)
    key_y = torch.tensor(ys)[:, None] + d * t[None, :]          # h × k
    key_x = torch.tensor(xs)[:, None] + d * t[None, :]          # w × k
    keys = (key_y[:, None, :, None] * w + key_x[None, :, None, :]).reshape(h * w, k * k)
    side = 2 * k - 1
    bias_y = torch.tensor(bys)[:, None] + t[None, :]
    bias_x = torch.tensor(bxs)[:, None] + t[None, :]
    bias = (bias_y[:, None, :, None] * side + bias_x[None, :, None, :]).reshape(h * w, k * k)
    return keys, bias


def neighbourhood_attention(q, k, v, rpb, keys, bias_index, scale):
    # q, k, v: batch × heads × pixels × channels; rpb: heads × (2k−1)².
    b, heads, pixels, c = q.shape
    kk = keys.shape[1]
    k_n = k[:, :, keys.reshape(-1)].reshape(b, heads, pixels, kk, c)
    v_n = v[:, :, keys.reshape(-1)].reshape(b, heads, pixels, kk, c)
    logits = torch.einsum("bhpc,bhpkc->bhpk", q, k_n) * scale + rpb[:, bias_index][None]
    attention = logits.softmax(-1)
    return torch.einsum("bhpk,bhpkc->bhpc", attention, v_n)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=64, help="channels of the layer (split over the heads)")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--kernel", type=int, default=7)
    parser.add_argument("--dilation", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n, c = args.size, args.channels // args.heads
    keys, bias_index = tables(n, n, args.kernel, args.dilation)
    shape = (args.batch, args.heads, n * n, c)
    q, k, v = (torch.randn(shape, requires_grad=True) for _ in range(3))
    rpb = torch.randn(args.heads, (2 * args.kernel - 1) ** 2, requires_grad=True)
    r = torch.randn(shape)
    times = []
    for _ in range(args.repeats + 2):
        start = time.perf_counter()
        out = neighbourhood_attention(q, k, v, rpb, keys, bias_index, c ** -0.5)
        (out * r).sum().backward()
        times.append(time.perf_counter() - start)
        for t in (q, k, v, rpb):
            t.grad = None
    median = statistics.median(times[2:]) * 1e3
    print(f"neighbourhood attention {n}×{n}, {args.channels} channels, {args.heads} heads, k {args.kernel}, "
          f"d {args.dilation}, batch {args.batch}: {median:.2f} ms per forward + backward")


if __name__ == "__main__":
    main()
