//! The GNN lab's data: the restricted unpickler and Planetoid's loading rules, on the shipped Cora
//! and on pickles written here byte by byte.

use std::path::Path;

use sparsefield::compute::gnn::graph::undirected_edges;
use sparsefield::compute::gnn::pickle::{self, MAX_DEPTH, Value};
use sparsefield::compute::gnn::planetoid::{self, PlanetoidError};

use super::alloc_cap;
use super::common::temp_dir;

/// Protocol-2 pickles written opcode by opcode, the way numpy, scipy and Planetoid write them.
mod writer {
    pub fn global(module: &str, name: &str) -> Vec<u8> {
        [b"c", module.as_bytes(), b"\n", name.as_bytes(), b"\n"].concat()
    }

    pub fn int(v: i32) -> Vec<u8> {
        [&b"J"[..], &v.to_le_bytes()].concat()
    }

    pub fn bytes(b: &[u8]) -> Vec<u8> {
        [&b"T"[..], &(b.len() as u32).to_le_bytes(), b].concat()
    }

    pub fn short(b: &str) -> Vec<u8> {
        [&b"U"[..], &[b.len() as u8], b.as_bytes()].concat()
    }

    pub fn tuple(items: &[Vec<u8>]) -> Vec<u8> {
        [vec![b'('], items.concat(), vec![b't']].concat()
    }

    /// A numpy array of `code` ("f4", "i4", …) with `shape` and raw little-endian `data`.
    pub fn array(code: &str, shape: &[i32], data: &[u8]) -> Vec<u8> {
        let dtype = [
            global("numpy", "dtype"),
            tuple(&[short(code), int(0), int(1)]),
            vec![b'R'],
            tuple(&[int(3), short("<"), b"N".to_vec(), b"N".to_vec(), b"N".to_vec(), int(-1), int(-1), int(0)]),
            vec![b'b'],
        ]
        .concat();
        let shape: Vec<Vec<u8>> = shape.iter().map(|&d| int(d)).collect();
        [
            global("numpy.core.multiarray", "_reconstruct"),
            global("numpy", "ndarray"),
            int(0),
            vec![0x85],
            short("b"),
            vec![0x87, b'R'],
            tuple(&[int(1), tuple(&shape), dtype, vec![0x89], bytes(data)]),
            vec![b'b'],
        ]
        .concat()
    }

    pub fn f32s(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    pub fn i32s(values: &[i32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// A scipy CSR matrix from dense rows.
    pub fn csr(rows: &[Vec<f32>], cols: usize) -> Vec<u8> {
        let (mut indptr, mut indices, mut data) = (vec![0], Vec::new(), Vec::new());
        for row in rows {
            for (c, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    indices.push(c as i32);
                    data.push(v);
                }
            }
            indptr.push(indices.len() as i32);
        }
        let n = indices.len() as i32;
        [
            global("scipy.sparse.csr", "csr_matrix"),
            vec![b')', 0x81, b'}', b'('],
            short("format"),
            short("csr"),
            short("_shape"),
            tuple(&[int(rows.len() as i32), int(cols as i32)]),
            short("indptr"),
            array("i4", &[indptr.len() as i32], &i32s(&indptr)),
            short("indices"),
            array("i4", &[n], &i32s(&indices)),
            short("data"),
            array("f4", &[n], &f32s(&data)),
            vec![b'u', b'b'],
        ]
        .concat()
    }

    /// One-hot labels.
    pub fn one_hot(labels: &[Option<usize>], classes: usize) -> Vec<u8> {
        let mut data = vec![0_i32; labels.len() * classes];
        for (r, l) in labels.iter().enumerate() {
            if let Some(c) = l {
                data[r * classes + c] = 1;
            }
        }
        array("i4", &[labels.len() as i32, classes as i32], &i32s(&data))
    }

    /// `defaultdict(list)` of adjacency lists.
    pub fn adjacency(lists: &[(i32, Vec<i32>)]) -> Vec<u8> {
        let mut out =
            [global("collections", "defaultdict"), global("__builtin__", "list"), vec![0x85, b'R', b'(']].concat();
        for (node, neighbours) in lists {
            out.extend(int(*node));
            out.extend([b']', b'(']);
            for n in neighbours {
                out.extend(int(*n));
            }
            out.push(b'e');
        }
        out.push(b'u');
        out
    }

    /// A whole file holding one value.
    pub fn file(value: Vec<u8>) -> Vec<u8> {
        [vec![0x80, 2], value, vec![b'.']].concat()
    }
}

fn cora_file(suffix: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/planetoid-cora").join(format!("ind.cora.{suffix}")),
    )
    .unwrap()
}

/// The shipped Cora, read by Planetoid's rules: PyTorch Geometric's figures (2708 nodes, 1433
/// features, 7 classes, 10,556 directed edges after removing duplicates and self loops), the
/// standard split with 20 training nodes per class, and the test nodes' rows in place: Cora's
/// edge homophily is 0.81 (Zhu et al. 2020), which scrambled test rows would lower.
#[test]
fn cora_loads_by_planetoids_rules() {
    let cora = planetoid::cora().unwrap();
    assert_eq!(cora.num_nodes, 2708);
    assert_eq!((cora.features.rows, cora.features.cols), (2708, 1433));
    assert_eq!(cora.num_classes, 7);
    assert_eq!(cora.edges.len(), 10_556);
    assert_eq!((cora.split.train.len(), cora.split.val.len(), cora.split.test.len()), (140, 500, 1000));
    assert_eq!(cora.split.train, (0..140).collect::<Vec<_>>());
    assert_eq!(cora.split.val, (140..640).collect::<Vec<_>>());
    assert_eq!(cora.split.test, (1708..2708).collect::<Vec<_>>());
    let mut per_class = [0; 7];
    for &n in &cora.split.train {
        per_class[cora.labels[n].unwrap() as usize] += 1;
    }
    assert_eq!(per_class, [20; 7]);
    assert!(cora.labels.iter().all(Option::is_some), "every Cora node has a class");
    assert!(cora.features.values.iter().all(|&v| v == 1.0), "binary word features");
    assert!((0..2708).all(|r| cora.features.row(r).count() > 0), "every paper has words");
    let h = cora.edge_homophily().unwrap();
    assert!((0.80..0.82).contains(&h), "edge homophily {h}");
    // Edges are symmetric, sorted, unique and loop-free.
    assert!(cora.edges.windows(2).all(|w| w[0] < w[1]));
    assert!(cora.edges.iter().all(|&(a, b)| a != b && cora.edges.binary_search(&(b, a)).is_ok()));
}

/// A Planetoid folder written here: `tx` row k belongs to node `test.index[k]`; an unlisted id
/// inside the test range gets a zero row and no label; the split follows `y` and the 500
/// validation nodes.
fn write_small_planetoid(dir: &Path, test_index: &str) {
    let classes = 3;
    let known = 503;
    let allx: Vec<Vec<f32>> = (0..known).map(|i| vec![(i % 4) as f32, 1.0, 0.0, 0.0]).collect();
    let ally: Vec<Option<usize>> = (0..known).map(|i| Some(i % classes)).collect();
    // Test rows carry their own marks: feature 2 = 10 + k, class k.
    let tx: Vec<Vec<f32>> = (0..3).map(|k| vec![0.0, 0.0, 10.0 + k as f32, 0.0]).collect();
    let ty: Vec<Option<usize>> = (0..3).map(Some).collect();
    let files: [(&str, Vec<u8>); 7] = [
        ("x", writer::csr(&allx[..3], 4)),
        ("y", writer::one_hot(&ally[..3], classes)),
        ("allx", writer::csr(&allx, 4)),
        ("ally", writer::one_hot(&ally, classes)),
        ("tx", writer::csr(&tx, 4)),
        ("ty", writer::one_hot(&ty, classes)),
        ("graph", writer::adjacency(&[(0, vec![1, 1, 0]), (505, vec![503]), (2, vec![])])),
    ];
    for (suffix, value) in files {
        std::fs::write(dir.join(format!("ind.small.{suffix}")), writer::file(value)).unwrap();
    }
    std::fs::write(dir.join("ind.small.test.index"), test_index).unwrap();
}

#[test]
fn planetoid_rules_on_a_hand_made_data_set() {
    let dir = temp_dir("gnn-small");
    let raw = dir.join("Small").join("raw");
    std::fs::create_dir_all(&raw).unwrap();
    write_small_planetoid(&raw, "505\n503\n507\n");
    // Found from PyTorch Geometric's <root>/<Name> folder too.
    let graph = planetoid::load(&dir.join("Small")).unwrap();
    assert_eq!(graph.name, "small");
    assert_eq!(graph.num_nodes, 508);
    assert_eq!(graph.split.train, vec![0, 1, 2]);
    assert_eq!(graph.split.val, (3..503).collect::<Vec<_>>());
    assert_eq!(graph.split.test, vec![503, 505, 507]);
    let mark = |node: usize| graph.features.row(node).find(|&(c, _)| c == 2).map(|(_, v)| v);
    // tx row k → node test.index[k].
    assert_eq!((mark(505), graph.labels[505]), (Some(10.0), Some(0)));
    assert_eq!((mark(503), graph.labels[503]), (Some(11.0), Some(1)));
    assert_eq!((mark(507), graph.labels[507]), (Some(12.0), Some(2)));
    // Unlisted ids in the test range: zero rows, no label.
    for isolated in [504, 506] {
        assert_eq!(graph.features.row(isolated).count(), 0);
        assert_eq!(graph.labels[isolated], None);
    }
    assert_eq!(graph.labels[7], Some(7 % 3));
    // Duplicates and the self loop go; both directions stay.
    assert_eq!(graph.edges, vec![(0, 1), (1, 0), (503, 505), (505, 503)]);
    assert_eq!(undirected_edges([(2, 1), (1, 2), (3, 3)]), vec![(1, 2), (2, 1)]);

    // Bad folders and files, each named.
    let message = |e: PlanetoidError| e.to_string();
    let empty = temp_dir("gnn-empty");
    assert!(message(planetoid::load(&empty).unwrap_err()).contains("no Planetoid files here"));
    std::fs::remove_file(raw.join("ind.small.graph")).unwrap();
    let m = message(planetoid::load(&raw).unwrap_err());
    assert!(m.contains("ind.small.graph") && m.contains("missing"), "{m}");
    write_small_planetoid(&raw, "505\n503\n507\n503\n");
    let m = message(planetoid::load(&raw).unwrap_err());
    assert!(m.contains("ind.small.test.index") && m.contains("4 test ids for 3 rows"), "{m}");
    write_small_planetoid(&raw, "505\n503\n9999999\n");
    let m = message(planetoid::load(&raw).unwrap_err());
    assert!(m.contains("ind.small.test.index") && m.contains("spread over"), "{m}");
    write_small_planetoid(&raw, "505\nfive\n507\n");
    let m = message(planetoid::load(&raw).unwrap_err());
    assert!(m.contains("line 2: `five` is not a node id"), "{m}");
    write_small_planetoid(&raw, "505\n503\n507\n");
    std::fs::write(raw.join("ind.small.tx"), writer::file(writer::csr(&[vec![1.0; 5]], 5))).unwrap();
    let m = message(planetoid::load(&raw).unwrap_err());
    assert!(m.contains("ind.small.tx") && m.contains("feature widths differ"), "{m}");
    std::fs::write(raw.join("ind.small.tx"), b"\x80\x02cos\nsystem\n.").unwrap();
    let m = message(planetoid::load(&raw).unwrap_err());
    assert!(m.contains("ind.small.tx") && m.contains("refused global `os.system`") && m.contains("at byte 2"), "{m}");
}

/// Each refusal names what was wrong and where, and none allocates more than the file holds.
#[test]
fn the_unpickler_refuses_what_planetoid_files_never_hold() {
    let refused = |bytes: &[u8], expected: &str, offset: usize| {
        let (before, _) = alloc_cap::over_cap();
        let err = pickle::parse(bytes).unwrap_err();
        assert!(alloc_cap::over_cap().0 == before, "{expected}: a huge allocation");
        assert!(err.to_string().contains(expected), "{err} (expected «{expected}»)");
        assert_eq!(err.offset, offset, "{err}");
    };
    // Code: `os.system("ls")`, refused at its GLOBAL before anything is built.
    let evil =
        [&b"\x80\x02"[..], &writer::global("os", "system"), &writer::tuple(&[writer::short("ls")]), b"R."].concat();
    refused(&evil, "refused global `os.system`", 2);
    refused(&writer::file(writer::global("builtins", "eval")), "refused global `builtins.eval`", 2);
    // A known name called as nothing numpy writes.
    let call = writer::file([writer::global("__builtin__", "list"), writer::tuple(&[]), b"R".to_vec()].concat());
    refused(&call, "is not one numpy, scipy or Planetoid files make", call.len() - 2);
    // Truncated: Cora's features cut in half.
    let x = cora_file("x");
    let half = &x[..x.len() / 2];
    let err = pickle::parse(half).unwrap_err();
    assert!(err.to_string().contains("the file ends early") || err.to_string().contains("ends before"), "{err}");
    // A shape that does not match the bytes, and one whose size overflows.
    let mismatch = writer::file(writer::array("f4", &[3, 3], &[0; 8]));
    refused(&mismatch, "an array of shape [3, 3] (9 values of 4 bytes) holding 8 bytes", mismatch.len() - 2);
    let overflow = writer::file(writer::array("f8", &[i32::MAX, i32::MAX, i32::MAX], &[]));
    assert!(pickle::parse(&overflow).unwrap_err().to_string().contains("overflows"));
    // A huge declared length: refused before allocating.
    let huge = [&b"\x80\x02T"[..], &0xFFFF_FFF0_u32.to_le_bytes(), b"abc."].concat();
    refused(&huge, "4294967280 bytes announced, 4 left", 7);
    // Deep nesting: refused, no stack overflow building or dropping it.
    let deep = [&b"\x80\x02)"[..], &vec![0x85; 100_000], b"."].concat();
    refused(&deep, &format!("values nest more than {MAX_DEPTH} deep"), 2 + MAX_DEPTH as usize);
    // Opcodes outside the set, and newer protocols.
    refused(b"\x80\x02\x95\x00", "opcode 0x95", 2);
    refused(b"\x80\x04.", "pickle protocol 4", 0);
    refused(b"\x80\x02", "ends before its STOP", 2);
    refused(b"\x80\x02h\x05.", "memo GET of 5", 2);
    refused(b"\x80\x02cnumpy\nnda", "the file ends inside a name", 2);
}

#[test]
fn the_unpickler_reads_numpy_arrays_and_dicts() {
    let v = pickle::parse(&writer::file(writer::array("f4", &[2, 2], &writer::f32s(&[1.0, -2.0, 0.5, 4.0])))).unwrap();
    let Value::Array(a) = v else { panic!("{v:?}") };
    assert_eq!(a.shape, vec![2, 2]);
    assert_eq!(a.to_f64().unwrap(), vec![1.0, -2.0, 0.5, 4.0]);
    let v = pickle::parse(&writer::file(writer::adjacency(&[(3, vec![1, 2])]))).unwrap();
    assert_eq!(v, Value::DefaultDict(vec![(Value::Int(3), Value::List(vec![Value::Int(1), Value::Int(2)]))]));
    // Cora's files as they are.
    for suffix in ["x", "y", "tx", "ty", "allx", "ally", "graph"] {
        pickle::parse(&cora_file(suffix)).unwrap_or_else(|e| panic!("ind.cora.{suffix}: {e}"));
    }
}

mod models {
    use std::sync::Arc;

    use sparsefield::compute::control::RunControl;
    use sparsefield::compute::gnn::attention::Neighbourhoods;
    use sparsefield::compute::gnn::graph::{Graph, SparseRows, Split};
    use sparsefield::compute::gnn::model::{self, Arch, GnnConfig, Method};
    use sparsefield::compute::gnn::planetoid;
    use sparsefield::compute::gnn::sparse::{SparseOperator, gcn_adjacency};

    fn dense_rows(rows: &[&[f32]]) -> SparseRows {
        let cols = rows[0].len();
        let mut s = SparseRows { rows: rows.len(), cols, ..SparseRows::default() };
        s.indptr.push(0);
        for row in rows {
            for (c, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    s.indices.push(c as u32);
                    s.values.push(v);
                }
            }
            s.indptr.push(s.indices.len());
        }
        s
    }

    /// Â = D^-½ (A + I) D^-½ against the dense formula on a path and a triangle.
    #[test]
    fn gcn_adjacency_matches_the_dense_formula() {
        let n = 5;
        let edges = sparsefield::compute::gnn::graph::undirected_edges([(0, 1), (1, 2), (3, 4), (2, 0)]);
        let a_hat = gcn_adjacency(&edges, n).to_dense();
        let mut a = vec![0.0_f64; n * n];
        for &(i, j) in &edges {
            a[i as usize * n + j as usize] = 1.0;
        }
        for i in 0..n {
            a[i * n + i] = 1.0;
        }
        let degree: Vec<f64> = (0..n).map(|i| (0..n).map(|j| a[i * n + j]).sum()).collect();
        for i in 0..n {
            for j in 0..n {
                let expected = a[i * n + j] / (degree[i] * degree[j]).sqrt();
                assert!((f64::from(a_hat[i * n + j]) - expected).abs() < 1e-6, "({i},{j})");
            }
        }
    }

    /// The sparse product and the transpose against dense ones.
    #[test]
    fn sparse_products_match_dense_ones() {
        let s = dense_rows(&[&[1.0, 0.0, 2.0], &[0.0, 0.0, 0.0], &[0.5, -1.0, 0.0], &[0.0, 3.0, 1.0]]);
        let x: Vec<f32> = (0..6).map(|i| i as f32 * 0.3 - 0.7).collect();
        let dense = s.to_dense();
        let ours = s.matmul_dense(&x, 2);
        for r in 0..4 {
            for c in 0..2 {
                let expected: f32 = (0..3).map(|k| dense[r * 3 + k] * x[k * 2 + c]).sum();
                assert!((ours[r * 2 + c] - expected).abs() < 1e-6);
            }
        }
        let op = SparseOperator::new(s.clone());
        let t = op.transposed().to_dense();
        for r in 0..4 {
            for c in 0..3 {
                assert_eq!(t[c * 4 + r], dense[r * 3 + c]);
            }
        }
    }

    /// The global threshold drops exactly the requested share across layers, the per-layer rule
    /// the same share of each layer; the ramp goes 0 → target over the first half.
    #[test]
    fn masks_and_the_gradual_schedule() {
        let scores = vec![(0..100).map(|i| i as f32).collect::<Vec<_>>(), (0..50).map(|i| 200.0 + i as f32).collect()];
        let global = model::masks(&scores, 0.6, false);
        let dropped = |m: &[f32]| m.iter().filter(|&&v| v == 0.0).count();
        assert_eq!(dropped(&global[0]) + dropped(&global[1]), 89, "round(0.6 · 149) of 150");
        assert_eq!((dropped(&global[0]), dropped(&global[1])), (89, 0), "one threshold: the low layer loses all");
        let per_layer = model::masks(&scores, 0.6, true);
        assert_eq!((dropped(&per_layer[0]), dropped(&per_layer[1])), (59, 29), "k = 1 + round(0.6·(n−1)) per layer");
        assert!(model::masks(&scores, 0.0, false).iter().flatten().all(|&m| m == 1.0));
        let cfg = GnnConfig { epochs: 400, sparsity: 0.8, ..GnnConfig::default() };
        assert_eq!(cfg.sparsity_at(0), 0.0);
        assert!((cfg.sparsity_at(100) - 0.4).abs() < 1e-12);
        assert_eq!(cfg.sparsity_at(200), 0.8);
        assert_eq!(cfg.sparsity_at(399), 0.8);
        assert_eq!(GnnConfig { method: Method::EdgePopup, ..cfg }.sparsity_at(0), 0.8);
        assert_eq!(GnnConfig { method: Method::Dense, ..cfg }.sparsity_at(300), 0.0);
    }

    /// The threshold is the k-th smallest of all layers' scores in `total_cmp` order, k = round(s·(n−1)),
    /// whatever the values: a sort of the concatenation is the reference, on scores spread over
    /// many binades, negatives, both zeros, and runs of equal values inside one histogram bucket.
    #[test]
    fn global_threshold_is_the_sorted_kth_value() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut a: Vec<f32> = (0..5000).map(|_| rng.random_range(-0.07_f32..0.07)).collect();
        a.extend([0.0, -0.0, 0.0, 1e-30, -1e-30, 3.0, -3.0]);
        let b: Vec<f32> = (0..3000).map(|i| if i % 3 == 0 { 0.015625 } else { 0.015625 + i as f32 * 1e-9 }).collect();
        let c: Vec<f32> = (0..777).map(|_| rng.random_range(-1e4_f32..1e4)).collect();
        let parts: [&[f32]; 3] = [&a, &b, &c];
        let mut sorted: Vec<f32> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        sorted.sort_by(f32::total_cmp);
        let n = sorted.len();
        for s in [0.0, 1e-4, 0.1, 0.33, 0.5, 0.6, 0.9, 0.99, 0.999_9, 1.0] {
            let k = (s * (n - 1) as f64).round() as usize;
            let t = model::global_threshold(&parts, s);
            assert_eq!(t.to_bits(), sorted[k].to_bits(), "sparsity {s}: got {t}, the sort gives {}", sorted[k]);
        }
        assert_eq!(model::global_threshold(&[], 0.5), f32::NEG_INFINITY);
    }

    /// A small graph: two classes in two cliques joined by one edge.
    fn two_cliques() -> Graph {
        let mut pairs = Vec::new();
        for a in 0..5_u32 {
            for b in a + 1..5 {
                pairs.push((a, b));
                pairs.push((a + 5, b + 5));
            }
        }
        pairs.push((4, 5));
        let features = dense_rows(
            &(0..10).map(|i| if i < 5 { &[1.0_f32, 0.2, 0.0][..] } else { &[0.0, 0.2, 1.0][..] }).collect::<Vec<_>>(),
        );
        Graph {
            name: "cliques".into(),
            num_nodes: 10,
            features,
            labels: (0..10).map(|i| Some(u32::from(i >= 5))).collect(),
            num_classes: 2,
            edges: sparsefield::compute::gnn::graph::undirected_edges(pairs),
            split: Split { train: vec![0, 9], val: vec![1, 8], test: vec![2, 3, 6, 7] },
        }
    }

    /// The hand-written backward of every architecture against central finite differences of
    /// the loss in the effective tensors (every layer, with hidden ReLU layers between; GAT with
    /// two heads, its attention vectors too), and the scores' gradient as the straight-through
    /// one: the masked tensors' gradient times the fixed values.
    #[test]
    fn gradients_match_finite_differences_and_pass_straight_through_the_mask() {
        let graph = two_cliques();
        for arch in [Arch::Gcn, Arch::Gin, Arch::Gat] {
            let cfg = GnnConfig { arch, heads: 2, layers: 3, hidden: 4, sparsity: 0.5, ..GnnConfig::default() };
            let mut net = model::Gnn::new(&graph, &cfg).unwrap();
            let effective = net.effective_weights(0.5);
            assert_eq!(effective.len(), 3 * net.tensors_per_layer());
            let (loss, grads) = net.loss_and_gradients(&graph, &effective, 0.0);
            assert!(loss > 0.0);
            let (mut checked, mut kinks) = (0, 0);
            for l in 0..effective.len() {
                for i in 0..effective[l].len() {
                    let mut at = |delta: f32| {
                        let mut w = effective.clone();
                        w[l][i] += delta;
                        net.loss_and_gradients(&graph, &w, 0.0).0
                    };
                    let h = 1e-3;
                    let (up, here, down) = (at(h), at(0.0), at(-h));
                    let numeric = (up - down) / (2.0 * f64::from(h));
                    let analytic = f64::from(grads[l][i]);
                    let close = |n: f64| (n - analytic).abs() < 2e-3 * (1.0 + analytic.abs());
                    if !close(numeric) {
                        // A ReLU or LeakyReLU kink within ±h: the gradient is then one of the
                        // one-sided slopes.
                        let (forward, backward) = ((up - here) / f64::from(h), (here - down) / f64::from(h));
                        assert!(
                            close(forward) || close(backward),
                            "{arch:?} tensor {l}, [{i}]: {numeric} (one-sided {forward}, {backward}) vs {analytic}"
                        );
                        kinks += 1;
                    }
                    checked += usize::from(analytic.abs() > 1e-4);
                }
            }
            assert!(checked >= 8, "{arch:?}: only {checked} gradients were not ~0");
            let entries: usize = effective.iter().map(Vec::len).sum();
            assert!(kinks * 10 <= entries, "{arch:?}: {kinks} of {entries} entries sat on a kink");
            let (score_loss, score_grads) = net.trainable_gradients(&graph, 0.5);
            assert_eq!(score_loss, loss);
            for l in 0..grads.len() {
                for i in 0..grads[l].len() {
                    assert_eq!(score_grads[l][i], grads[l][i] * net.weights()[l][i], "{arch:?} tensor {l}, score {i}");
                }
            }
            // Masked-out weights still pass a gradient to their scores (that is how they come back).
            let masks = net.current_masks(0.5);
            let revived =
                (0..grads.len()).any(|l| (0..grads[l].len()).any(|i| masks[l][i] == 0.0 && score_grads[l][i] != 0.0));
            assert!(revived, "{arch:?}");
        }
    }

    /// On Cora the backward's products skip the nodes no gradient reaches (two layers from 140
    /// training nodes leave a third of the graph out): its gradients equal the full products'
    /// (taken when the split is not the one the network was built for: the same training nodes
    /// in another order). And Adam on `grads ⊙ weights` formed on the fly is Adam on the product.
    #[test]
    fn the_cut_backward_equals_the_full_one() {
        use sparsefield::compute::optim::FlatAdam;
        let cora = planetoid::cora().unwrap();
        let mut reordered = cora.clone();
        reordered.split.train.reverse();
        for (arch, layers) in [(Arch::Gcn, 2), (Arch::Gcn, 3), (Arch::Gin, 2)] {
            let cfg = GnnConfig { arch, layers, hidden: 8, sparsity: 0.5, ..GnnConfig::default() };
            let mut net = model::Gnn::new(&cora, &cfg).unwrap();
            let effective = net.effective_weights(0.5);
            let (cut_loss, cut) = net.loss_and_gradients(&cora, &effective, 0.0);
            let (full_loss, full) = net.loss_and_gradients(&reordered, &effective, 0.0);
            assert!((cut_loss - full_loss).abs() < 1e-9 * full_loss.abs());
            let mut nonzero = 0;
            for (c, f) in cut.iter().flatten().zip(full.iter().flatten()) {
                assert!((c - f).abs() <= 1e-6 * (1.0 + f.abs()), "{arch:?} {layers} layers: {c} vs {f}");
                nonzero += usize::from(*f != 0.0);
            }
            assert!(nonzero > 1000, "{arch:?}: only {nonzero} gradients are non-zero");
        }
        let grads: Vec<f32> = (0..40_000).map(|i| ((i * 37 % 101) as f32 - 50.0) * 1e-3).collect();
        let factors: Vec<f32> = (0..40_000).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.1).collect();
        let product: Vec<f32> = grads.iter().zip(&factors).map(|(g, f)| g * f).collect();
        let (mut a, mut b) = (vec![0.5_f32; 40_000], vec![0.5_f32; 40_000]);
        let (mut adam_a, mut adam_b) =
            (FlatAdam::new(40_000, 0.9, 0.999, 1e-8), FlatAdam::new(40_000, 0.9, 0.999, 1e-8));
        for _ in 0..3 {
            adam_a.step(&mut a, &product, 0.01);
            adam_b.step_product(&mut b, &grads, &factors, 0.01);
        }
        assert_eq!(a, b);
        assert!(a.iter().any(|&v| v != 0.5));
    }

    /// GAT's coefficients are a softmax over each node's neighbours and itself: positive, summing
    /// to 1 per node and head, and equal to the formula computed by hand for one node.
    #[test]
    fn gat_attention_sums_to_one_per_neighbourhood() {
        let graph = two_cliques();
        let hoods = Neighbourhoods::new(&graph.edges, graph.num_nodes);
        let (heads, width) = (3, 2);
        let x: Vec<f32> = (0..graph.num_nodes * heads * width).map(|i| ((i * 37 % 17) as f32 - 8.0) / 5.0).collect();
        let a_src: Vec<f32> = (0..heads * width).map(|i| 0.3 * i as f32 - 0.5).collect();
        let a_dst: Vec<f32> = (0..heads * width).map(|i| 0.7 - 0.2 * i as f32).collect();
        let (out, pass) = hoods.forward(&x, &a_src, &a_dst, heads, width, false);
        for i in 0..graph.num_nodes {
            let sources = hoods.sources_of(i);
            assert!(sources.contains(&(i as u32)), "self loop of {i}");
            let start: usize = (0..i).map(|k| hoods.sources_of(k).len()).sum();
            for h in 0..heads {
                let alphas: Vec<f32> = (0..sources.len()).map(|k| pass.alpha[(start + k) * heads + h]).collect();
                assert!(alphas.iter().all(|&a| a > 0.0));
                assert!((alphas.iter().sum::<f32>() - 1.0).abs() < 1e-5, "node {i} head {h}");
            }
        }
        // Node 4 (a clique of 0..5 plus the bridge to 5), head 1, by the formula.
        let (i, h) = (4_usize, 1_usize);
        let score = |a: &[f32], n: usize| -> f64 {
            (0..width).map(|c| f64::from(a[h * width + c]) * f64::from(x[n * heads * width + h * width + c])).sum()
        };
        let leaky = |z: f64| if z > 0.0 { z } else { 0.2 * z };
        let sources = hoods.sources_of(i);
        let e: Vec<f64> = sources.iter().map(|&j| leaky(score(&a_dst, i) + score(&a_src, j as usize)).exp()).collect();
        let total: f64 = e.iter().sum();
        for c in 0..width {
            let expected: f64 = sources
                .iter()
                .zip(&e)
                .map(|(&j, e)| e / total * f64::from(x[j as usize * heads * width + h * width + c]))
                .sum();
            let ours = f64::from(out[i * heads * width + h * width + c]);
            assert!((ours - expected).abs() < 1e-5, "channel {c}: {ours} vs {expected}");
        }
        // The last layer averages its heads.
        let (mean, _) = hoods.forward(&x, &a_src, &a_dst, heads, width, true);
        for c in 0..width {
            let expected: f32 = (0..heads).map(|h| out[i * heads * width + h * width + c]).sum::<f32>() / heads as f32;
            assert!((mean[i * width + c] - expected).abs() < 1e-5);
        }
    }

    /// GIN's propagation: each node itself plus the mean of its neighbours.
    #[test]
    fn gin_propagation_is_self_plus_neighbour_mean() {
        let edges = sparsefield::compute::gnn::graph::undirected_edges([(0, 1), (0, 2), (0, 3)]);
        let p = model::gin_propagation(&edges, 5).to_dense();
        let expected = [
            [1.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 0.0],
            [1.0, 1.0, 0.0, 0.0, 0.0],
            [1.0, 0.0, 1.0, 0.0, 0.0],
            [1.0, 0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 1.0],
        ];
        for i in 0..5 {
            for j in 0..5 {
                assert!((p[i * 5 + j] - expected[i][j]).abs() < 1e-6, "({i},{j})");
            }
        }
    }

    /// A seeded short UGT run on Cora is far above the untrained random net (the same weights and
    /// mask before any score moved), and the mask ends at the asked sparsity, for each
    /// architecture.
    #[test]
    fn a_short_ugt_run_on_cora_beats_its_untrained_start() {
        let cora = Arc::new(planetoid::cora().unwrap());
        for arch in [Arch::Gcn, Arch::Gin, Arch::Gat] {
            let cfg = GnnConfig { arch, epochs: 60, hidden: 64, sparsity: 0.5, ..GnnConfig::default() };
            let mut untrained = model::GnnTrainer::new(Arc::clone(&cora), &cfg).unwrap();
            let logits = untrained.evaluate();
            let before = model::accuracy(&logits, 7, &cora, &cora.split.test);
            let (summary, history) = model::train(Arc::clone(&cora), &cfg, &RunControl::new(), &mut |_| {}).unwrap();
            assert_eq!(history.len(), 60);
            assert!(summary.test_acc > before + 0.3 && summary.test_acc > 0.6, "{arch:?}: {before} → {summary:?}");
            assert!((summary.sparsity_reached - 0.5).abs() < 1e-3, "{arch:?}: {summary:?}");
        }
    }
}

mod studies {
    use std::sync::Arc;

    use sparsefield::compute::control::RunControl;
    use sparsefield::compute::gnn::csbm::{self, CsbmSpec};
    use sparsefield::compute::gnn::model::{Arch, GnnConfig, Method};
    use sparsefield::compute::gnn::study::{self, auroc, mad};

    /// MAD by the paper's definition on hand-made rows: identical rows have none, orthogonal ones
    /// 1, and a mix matches the formula worked by hand (zero distances left out of each mean;
    /// zero rows left out).
    #[test]
    fn mad_of_hand_made_embeddings() {
        assert!(mad(&[1.0, 2.0, 2.0, 4.0, 0.5, 1.0], 3, 2) < 1e-6, "parallel rows");
        assert!((mad(&[1.0, 0.0, 0.0, 3.0], 2, 2) - 1.0).abs() < 1e-6, "orthogonal rows");
        // a = (1, 0), b = (0, 1), c = (1, 1)/√2: D_ab = 1, D_ac = D_bc = 1 − 1/√2.
        let d = 1.0 - 1.0 / 2f64.sqrt();
        let expected = ((1.0 + d) / 2.0 + (1.0 + d) / 2.0 + d) / 3.0;
        let ours = mad(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], 3, 2);
        assert!((ours - expected).abs() < 1e-6, "{ours} vs {expected}");
        // Opposite rows are at distance 2; zero rows have no direction and are left out.
        assert!((mad(&[1.0, 0.0, -2.0, 0.0], 2, 2) - 2.0).abs() < 1e-6);
        assert_eq!(mad(&[1.0, 0.0, 0.0, 0.0], 2, 2), 0.0, "one non-zero row");
        assert!((mad(&[1.0, 0.0, 0.0, 0.0, 0.0, 2.0], 3, 2) - 1.0).abs() < 1e-6);
        assert_eq!(mad(&[0.0; 6], 3, 2), 0.0, "a dead layer");
        // Blocks: more rows than one block of the similarity matrix, two directions alternating.
        let n = 1300;
        let rows: Vec<f32> = (0..n).flat_map(|i| if i % 2 == 0 { [1.0, 0.0] } else { [0.0, 1.0] }).collect();
        assert!((mad(&rows, n, 2) - 1.0).abs() < 1e-6, "only non-zero distances count");
    }

    /// AUROC against counting pairs by hand, ties counting half.
    #[test]
    fn auroc_counts_ordered_pairs() {
        assert_eq!(auroc(&[3.0, 4.0], &[1.0, 2.0]), 1.0);
        assert_eq!(auroc(&[1.0, 2.0], &[3.0, 4.0]), 0.0);
        let (p, q) = ([0.9, 0.4, 0.7, 0.4], [0.1, 0.4, 0.8]);
        let mut wins = 0.0;
        for a in p {
            for b in q {
                wins += if a > b {
                    1.0
                } else if a == b {
                    0.5
                } else {
                    0.0
                };
            }
        }
        assert!((auroc(&p, &q) - wins / 12.0).abs() < 1e-12);
        assert_eq!(auroc(&[], &[1.0]), 0.5);
    }

    /// The block model gives what was asked: the share of same-class edges near the homophily,
    /// the mean degree, balanced classes, the class's vocabulary block over-represented by the
    /// signal; the same spec gives the same graph; bad specs are refused.
    #[test]
    fn csbm_has_the_homophily_and_degree_asked_for() {
        for homophily in [0.1, 0.5, 0.9] {
            let spec = CsbmSpec { nodes: 3000, homophily, degree: 6.0, ..CsbmSpec::default() };
            let g = csbm::generate(&spec).unwrap();
            let h = g.edge_homophily().unwrap();
            assert!((h - homophily).abs() < 0.03, "asked {homophily}, got {h}");
            let degree = g.edges.len() as f64 / g.num_nodes as f64;
            assert!((degree - 6.0).abs() < 0.1, "{degree}");
            assert_eq!(g.split.train.len(), 5 * 20);
            assert_eq!((g.split.val.len(), g.split.test.len()), (500, 1000));
        }
        let spec = CsbmSpec { signal: 0.5, ..CsbmSpec::default() };
        let g = csbm::generate(&spec).unwrap();
        let block = spec.features / spec.classes;
        let (mut own, mut total) = (0, 0);
        for node in 0..g.num_nodes {
            let c = g.labels[node].unwrap() as usize;
            for (f, _) in g.features.row(node) {
                total += 1;
                own += usize::from(f / block == c);
            }
        }
        // Expected share from the class block: signal + (1 − signal)/classes (before duplicates merge).
        let share = own as f64 / total as f64;
        assert!((share - 0.6).abs() < 0.05, "{share}");
        assert_eq!(csbm::generate(&spec).unwrap(), g);
        assert!(csbm::generate(&CsbmSpec { homophily: 1.5, ..spec }).is_err());
        assert!(csbm::generate(&CsbmSpec { classes: 1, ..spec }).is_err());
        assert!(csbm::generate(&CsbmSpec { degree: f64::NAN, ..spec }).is_err());
    }

    /// Holding classes out removes their labels, renumbers the rest, and the OOD study runs; a
    /// clearly separable block model gives an AUROC above chance.
    #[test]
    fn ood_holds_classes_out_and_scores_them() {
        let spec = CsbmSpec { nodes: 1500, classes: 5, homophily: 0.9, signal: 0.5, ..CsbmSpec::default() };
        let g = csbm::generate(&spec).unwrap();
        let (seen, held) = study::hold_out_classes(&g, 0.4, 3).unwrap();
        assert_eq!(held.len(), 2);
        assert_eq!(seen.num_classes, 3);
        for node in 0..g.num_nodes {
            let original = g.labels[node].unwrap();
            assert_eq!(seen.labels[node].is_none(), held.contains(&original), "node {node}");
        }
        assert!(study::hold_out_classes(&g, 1.5, 0).is_err());
        let config = GnnConfig { epochs: 60, hidden: 64, method: Method::Dense, ..GnnConfig::default() };
        let result = study::ood(&g, &config, 0.4, &RunControl::new()).unwrap();
        assert!(result.in_distribution_acc > 0.8, "{result:?}");
        assert!(result.auroc_softmax > 0.6, "{}", result.auroc_softmax);
        assert_eq!(result.seen_scores.len() + result.unseen_scores.len(), g.split.test.len());
        // The confidence histogram spans the scores and each set's shares sum to 1.
        use sparsefield::compute::gnn::files::{histogram, histogram_range};
        let range = histogram_range(&result);
        assert!(result.seen_scores.iter().chain(&result.unseen_scores).all(|&s| (range.0..=range.1).contains(&s)));
        for scores in [&result.seen_scores, &result.unseen_scores] {
            assert!((histogram(scores, range).iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
    }

    /// The sweep grid: every method × sparsity × depth × seed once (dense once per depth and
    /// seed); the depth study measures one MAD per layer.
    #[test]
    fn sweep_grid_covers_each_cell_once_and_depth_measures_mad() {
        let base = GnnConfig::default();
        let grid = study::sweep_grid(&base, &[Method::Ugt, Method::EdgePopup, Method::Dense], &[0.5, 0.9], &[2, 4], 3);
        assert_eq!(grid.len(), (2 * 2 + 1) * 2 * 3);
        let mut keys: Vec<String> =
            grid.iter().map(|c| format!("{:?} {} {} {}", c.method, c.sparsity, c.layers, c.seed)).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), grid.len());
        let g = Arc::new(csbm::generate(&CsbmSpec { nodes: 400, ..CsbmSpec::default() }).unwrap());
        let small = GnnConfig { arch: Arch::Gcn, epochs: 20, hidden: 16, ..GnnConfig::default() };
        let grid = study::sweep_grid(&small, &[Method::Ugt], &[0.5], &[2, 3], 1);
        let rows = study::run_grid(&g, &grid, true, &RunControl::new(), &mut |_, _| {}).unwrap();
        assert_eq!(rows.iter().map(|r| r.mad.len()).collect::<Vec<_>>(), vec![2, 3]);
        assert!(rows.iter().flat_map(|r| &r.mad).all(|m| (0.0..=2.0).contains(m)));
    }
}

mod plain_files {
    use sparsefield::compute::gnn::plain;

    fn folder(name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sparsefield_plain_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (file, text) in files {
            std::fs::write(dir.join(file), text).unwrap();
        }
        dir
    }

    /// A small graph in the plain format: edges made undirected, named labels numbered in sorted
    /// order, sparse features, a given split; dense features and a drawn split in a second one.
    #[test]
    fn plain_folders_load() {
        let dir = folder(
            "ok",
            &[
                ("edges.csv", "source,target\n0,1\n1,2\n2,0\n3,4\n"),
                ("labels.csv", "node,label\n0,cat\n1,cat\n2,dog\n3,dog\n4,bird\n"),
                ("features.csv", "node,feature,value\n0,0,1\n1,2,0.5\n4,1,2\n"),
                ("split.csv", "0,train\n2,train\n4,train\n1,val\n3,test\n"),
            ],
        );
        assert!(plain::is_plain(&dir));
        let g = plain::load(&dir).unwrap();
        assert_eq!((g.num_nodes, g.num_classes, g.edges.len()), (5, 3, 8));
        assert_eq!(g.labels, vec![Some(1), Some(1), Some(2), Some(2), Some(0)], "bird, cat, dog");
        assert_eq!(g.features.to_dense(), vec![1., 0., 0., 0., 0., 0.5, 0., 0., 0., 0., 0., 0., 0., 1.0 * 2.0, 0.]);
        assert_eq!(
            (g.split.train.clone(), g.split.val.clone(), g.split.test.clone()),
            (vec![0, 2, 4], vec![1], vec![3])
        );
        let dir = folder(
            "dense",
            &[
                ("edges.csv", "0,1\n1,2\n"),
                ("labels.csv", "0,0\n1,1\n2,1\n"),
                ("features.csv", "0,1,0\n1,0,1\n2,1,1\n"),
            ],
        );
        let g = plain::load(&dir).unwrap();
        assert_eq!((g.features.rows, g.features.cols, g.features.nnz()), (3, 2, 4));
        assert_eq!(g.split.train.len(), 2, "one training node per class on a tiny graph");
        let dir = folder("nofeatures", &[("edges.csv", "0,1\n"), ("labels.csv", "0,0\n1,1\n")]);
        assert_eq!(plain::load(&dir).unwrap().features.to_dense(), vec![1.0, 0.0, 0.0, 1.0], "one-hot");
    }

    /// Bad files are refused with the file, the line and what is wrong.
    #[test]
    fn bad_plain_files_name_the_file_and_line() {
        // (folder, its files, what the message must say)
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: [Case; 7] = [
            ("badid", &[("edges.csv", "0,1\n1,x\n"), ("labels.csv", "0,0\n1,1\n")], &["edges.csv", "line 2", "\"x\""]),
            ("huge", &[("edges.csv", "0,99999999999\n"), ("labels.csv", "0,0\n1,1\n")], &["edges.csv", "too large"]),
            (
                "fields",
                &[("edges.csv", "0,1,2\n"), ("labels.csv", "0,0\n1,1\n")],
                &["edges.csv", "3 fields, expected 2"],
            ),
            ("nolabels", &[("edges.csv", "0,1\n")], &["labels.csv", "cannot read"]),
            ("oneclass", &[("edges.csv", "0,1\n"), ("labels.csv", "0,a\n1,a\n")], &["labels.csv", "at least 2"]),
            (
                "ragged",
                &[("edges.csv", "0,1\n"), ("labels.csv", "0,0\n1,1\n"), ("features.csv", "0,1,2\n1,3\n")],
                &["features.csv", "line 2", "1 values, earlier rows have 2"],
            ),
            (
                "split",
                &[("edges.csv", "0,1\n"), ("labels.csv", "0,0\n1,1\n"), ("split.csv", "0,train\n1,holdout\n")],
                &["split.csv", "line 2", "use train, val or test"],
            ),
        ];
        for (name, files, wanted) in cases {
            let err = plain::load(&folder(name, files)).unwrap_err().to_string();
            for w in wanted {
                assert!(err.contains(w), "{name}: {err:?} lacks {w:?}");
            }
        }
    }
}

mod graph_layout {
    use sparsefield::compute::control::RunControl;
    use sparsefield::compute::gnn::graph::undirected_edges;
    use sparsefield::compute::gnn::layout::force_directed;

    /// The layout of two cliques joined by one edge: seeded (the same twice), inside the unit
    /// square, each clique's nodes closer to one another than to the other clique's; a
    /// cancelled layout returns nothing.
    #[test]
    fn force_directed_layout_keeps_neighbours_close() {
        let mut pairs = Vec::new();
        for a in 0..8_u32 {
            for b in a + 1..8 {
                pairs.push((a, b));
                pairs.push((a + 8, b + 8));
            }
        }
        pairs.push((7, 8));
        let edges = undirected_edges(pairs);
        let mut rounds = 0;
        let layout = force_directed(16, &edges, 100, 1, &RunControl::new(), &mut |r| rounds = r).unwrap();
        assert_eq!(rounds, 100);
        assert_eq!(layout, force_directed(16, &edges, 100, 1, &RunControl::new(), &mut |_| {}).unwrap());
        assert!(layout.positions.iter().flatten().all(|v| (0.0..=1.0).contains(v)));
        let d = |a: usize, b: usize| {
            let (p, q) = (layout.positions[a], layout.positions[b]);
            ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt()
        };
        let mean = |pairs: &[(usize, usize)]| pairs.iter().map(|&(a, b)| d(a, b)).sum::<f32>() / pairs.len() as f32;
        let within: Vec<(usize, usize)> =
            (0..8).flat_map(|a| (a + 1..8).flat_map(move |b| [(a, b), (a + 8, b + 8)])).collect();
        let across: Vec<(usize, usize)> = (0..8).flat_map(|a| (8..16).map(move |b| (a, b))).collect();
        assert!(mean(&within) * 2.0 < mean(&across), "within {} across {}", mean(&within), mean(&across));
        let control = RunControl::new();
        control.cancel();
        assert!(force_directed(16, &edges, 100, 1, &control, &mut |_| {}).is_none());
    }

    /// On Cora, the ends of an edge lie far closer than two nodes drawn at random (the time is
    /// printed, not asserted).
    #[test]
    fn cora_layout_puts_neighbours_together() {
        let cora = sparsefield::compute::gnn::planetoid::cora().unwrap();
        let started = std::time::Instant::now();
        let layout = force_directed(cora.num_nodes, &cora.edges, 150, 0, &RunControl::new(), &mut |_| {}).unwrap();
        eprintln!("Cora layout: {:.2} s", started.elapsed().as_secs_f64());
        assert_eq!(layout.positions.len(), 2708);
        let d = |a: usize, b: usize| {
            let (p, q) = (layout.positions[a], layout.positions[b]);
            f64::from(((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt())
        };
        let edge = cora.edges.iter().map(|&(a, b)| d(a as usize, b as usize)).sum::<f64>() / cora.edges.len() as f64;
        let random = (0..5000).map(|k| d(k * 7919 % 2708, k * 104_729 % 2708)).sum::<f64>() / 5000.0;
        assert!(edge * 4.0 < random, "edges {edge:.4}, random pairs {random:.4}");
    }
}
