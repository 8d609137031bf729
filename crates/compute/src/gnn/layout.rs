//! A force-directed layout of a graph for the lab's graph view (Fruchterman–Reingold: every pair
//! of nodes repels, every edge pulls, a pull to the centre keeps separate components near
//! the main one, and the step size cools), computed once per data set in the background.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::control::RunControl;

/// Graphs with more nodes are laid out on their first this many nodes only.
pub const MAX_LAYOUT_NODES: usize = 20_000;

/// The pull towards the centre, per unit of distance.
const GRAVITY: f32 = 2.0;

/// Node positions in the unit square.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub positions: Vec<[f32; 2]>,
}

/// Lays out `num_nodes` nodes joined by `edges` (each undirected edge may appear in both
/// directions) over `iterations` rounds, seeded; `on_round(done)` after each round. `None` when
/// cancelled.
pub fn force_directed(
    num_nodes: usize,
    edges: &[(u32, u32)],
    iterations: usize,
    seed: u64,
    control: &RunControl,
    on_round: &mut dyn FnMut(usize),
) -> Option<Layout> {
    let n = num_nodes.min(MAX_LAYOUT_NODES);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pos: Vec<[f32; 2]> = (0..n).map(|_| [rng.random::<f32>(), rng.random::<f32>()]).collect();
    if n < 2 {
        return Some(Layout { positions: pos.iter().map(|_| [0.5, 0.5]).collect() });
    }
    let edges: Vec<(usize, usize)> =
        edges.iter().map(|&(a, b)| (a as usize, b as usize)).filter(|&(a, b)| a < b && b < n).collect();
    #[allow(clippy::cast_precision_loss)]
    let k = (1.0 / n as f32).sqrt();
    let k2 = k * k;
    let mut temperature = 0.1_f32;
    #[allow(clippy::cast_precision_loss)]
    let cooling = (0.002_f32 / temperature).powf(1.0 / iterations.max(1) as f32);
    for round in 0..iterations {
        if control.is_cancelled() {
            return None;
        }
        // Repulsion between every pair, parallel over the nodes moved.
        let snapshot = &pos;
        let mut shift: Vec<[f32; 2]> = snapshot
            .par_iter()
            .enumerate()
            .map(|(i, p)| {
                let mut d = [0.0_f32; 2];
                for (j, q) in snapshot.iter().enumerate() {
                    if i == j {
                        continue;
                    }
                    let (dx, dy) = (p[0] - q[0], p[1] - q[1]);
                    let dist2 = (dx * dx + dy * dy).max(1e-9);
                    let f = k2 / dist2;
                    d[0] += dx * f;
                    d[1] += dy * f;
                }
                // A pull to the centre, strong enough that separate components stay near the
                // main one (the repulsion of all n nodes, n·k² = 1, balances it at distance ~1/√g).
                d[0] -= (p[0] - 0.5) * GRAVITY;
                d[1] -= (p[1] - 0.5) * GRAVITY;
                d
            })
            .collect();
        for &(a, b) in &edges {
            let (dx, dy) = (pos[a][0] - pos[b][0], pos[a][1] - pos[b][1]);
            let dist = (dx * dx + dy * dy).sqrt();
            let f = dist / k;
            shift[a][0] -= dx * f;
            shift[a][1] -= dy * f;
            shift[b][0] += dx * f;
            shift[b][1] += dy * f;
        }
        for (p, d) in pos.iter_mut().zip(&shift) {
            let len = (d[0] * d[0] + d[1] * d[1]).sqrt();
            if len > 0.0 {
                let step = len.min(temperature) / len;
                p[0] += d[0] * step;
                p[1] += d[1] * step;
            }
        }
        temperature *= cooling;
        on_round(round + 1);
    }
    Some(Layout { positions: normalised(pos) })
}

/// Positions scaled uniformly into [0.02, 0.98]² (the aspect ratio kept).
fn normalised(pos: Vec<[f32; 2]>) -> Vec<[f32; 2]> {
    let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
    for p in &pos {
        for c in 0..2 {
            lo[c] = lo[c].min(p[c]);
            hi[c] = hi[c].max(p[c]);
        }
    }
    let span = (hi[0] - lo[0]).max(hi[1] - lo[1]).max(1e-9);
    let offset = [(span - (hi[0] - lo[0])) / 2.0, (span - (hi[1] - lo[1])) / 2.0];
    pos.into_iter()
        .map(|p| [0.02 + 0.96 * (p[0] - lo[0] + offset[0]) / span, 0.02 + 0.96 * (p[1] - lo[1] + offset[1]) / span])
        .collect()
}
