"""Reference timing for `sparsefield bench ntk`: the empirical NTK Gram matrix of a one-hidden-layer
ReLU net with bias, and all its eigenvalues, written plainly in numpy (OpenBLAS).

    python3 benches/numpy_ntk.py [--n 2000] [--d 10] [--m 4096] [--bias 0]
"""

import argparse
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--m", type=int, default=4096)
    parser.add_argument("--bias", type=float, default=0.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, args.d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = rng.standard_normal((args.m, args.d))
    gram_ms, eig_ms = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        active = (x @ w.T > args.bias).astype(np.float64)
        gram = (x @ x.T + 1.0) * (active @ active.T) / args.m
        gram_ms.append(1000 * (time.perf_counter() - start))
        start = time.perf_counter()
        values = np.linalg.eigvalsh(gram)
        eig_ms.append(1000 * (time.perf_counter() - start))
    print(f"Gram {min(gram_ms):.0f} ms, eigvalsh {min(eig_ms):.0f} ms (best of {args.repeats}); "
          f"lambda_min {values[0]:.4e}, lambda_max {values[-1]:.4e}")


if __name__ == "__main__":
    main()
