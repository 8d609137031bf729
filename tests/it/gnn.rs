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
    use sparsefield::compute::gnn::graph::{Graph, SparseRows, Split};
    use sparsefield::compute::gnn::model::{self, GnnConfig, Method};
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

    /// The hand-written backward against central finite differences of the loss in the effective
    /// weights (every layer, with a hidden ReLU layer between), and the scores' gradient as the
    /// straight-through one: the masked weights' gradient times the weights.
    #[test]
    fn gradients_match_finite_differences_and_pass_straight_through_the_mask() {
        let graph = two_cliques();
        let cfg = GnnConfig { layers: 3, hidden: 4, sparsity: 0.5, ..GnnConfig::default() };
        let mut net = model::Gcn::new(&graph, &cfg).unwrap();
        let effective = net.effective_weights(0.5);
        let (loss, grads) = net.loss_and_gradients(&graph, &effective, 0.0);
        assert!(loss > 0.0);
        for l in 0..effective.len() {
            for i in (0..effective[l].len()).step_by(3) {
                let mut at = |delta: f32| {
                    let mut w = effective.clone();
                    w[l][i] += delta;
                    net.loss_and_gradients(&graph, &w, 0.0).0
                };
                let h = 1e-3;
                let numeric = (at(h) - at(-h)) / (2.0 * f64::from(h));
                let analytic = f64::from(grads[l][i]);
                assert!(
                    (numeric - analytic).abs() < 1e-3 * (1.0 + analytic.abs()),
                    "layer {l}, w[{i}]: {numeric} vs {analytic}"
                );
            }
        }
        let (score_loss, score_grads) = net.trainable_gradients(&graph, 0.5);
        assert_eq!(score_loss, loss);
        for l in 0..grads.len() {
            for i in 0..grads[l].len() {
                assert_eq!(score_grads[l][i], grads[l][i] * net.weights()[l][i], "layer {l}, score {i}");
            }
        }
        // Masked-out weights still pass a gradient to their scores (that is how they come back).
        let masks = net.current_masks(0.5);
        let revived =
            (0..grads.len()).any(|l| (0..grads[l].len()).any(|i| masks[l][i] == 0.0 && score_grads[l][i] != 0.0));
        assert!(revived);
    }

    /// A seeded short UGT run on Cora is far above the untrained random net (the same weights and
    /// mask before any score moved), and the mask ends at the asked sparsity.
    #[test]
    fn a_short_ugt_run_on_cora_beats_its_untrained_start() {
        let cora = Arc::new(planetoid::cora().unwrap());
        let cfg = GnnConfig { epochs: 60, hidden: 64, sparsity: 0.5, ..GnnConfig::default() };
        let mut untrained = model::GcnTrainer::new(Arc::clone(&cora), &cfg).unwrap();
        let logits = untrained.evaluate();
        let before = model::accuracy(&logits, 7, &cora, &cora.split.test);
        let (summary, history) = model::train_gcn(Arc::clone(&cora), &cfg, &RunControl::new(), &mut |_| {}).unwrap();
        assert_eq!(history.len(), 60);
        assert!(summary.test_acc > before + 0.3 && summary.test_acc > 0.6, "{before} → {summary:?}");
        assert!((summary.sparsity_reached - 0.5).abs() < 1e-3, "{summary:?}");
    }
}
