//! Planetoid's raw files (`ind.<name>.{x,y,tx,ty,allx,ally,graph,test.index}`), the form in which
//! PyTorch Geometric and DGL users have Cora, Citeseer and PubMed on disk, read by the rules of
//! Planetoid's own loader:
//! - the nodes are `allx`'s rows, then the test nodes; `tx` row k (and `ty` row k) belongs to node
//!   `test.index[k]` (the file is not sorted), so those rows are put in place by that index;
//! - ids between the smallest and the largest test id that `test.index` does not list (Citeseer
//!   has some isolated ones) get a zero feature row and no label;
//! - the split: the first `len(y)` nodes train, the next 500 validate, the listed test ids test;
//! - the adjacency lists become undirected edges, without duplicates or self loops (as PyTorch
//!   Geometric does).
//!
//! The pickles go through [`super::pickle`], which builds values and never runs code.

use std::path::{Path, PathBuf};

use super::graph::{Graph, SparseRows, Split, undirected_edges};
use super::pickle::{self, Array, Value};
use crate::files::{self, FileKind};

/// One of Planetoid's raw files.
pub const PICKLE: FileKind = FileKind { name: "a Planetoid data file", max_bytes: 1024 << 20 };

/// The files a Planetoid data set needs, by suffix.
pub const SUFFIXES: [&str; 8] = ["x", "y", "tx", "ty", "allx", "ally", "graph", "test.index"];

/// Validation nodes in Planetoid's split.
const VALIDATION: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum PlanetoidError {
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error(
        "{}: no Planetoid files here (ind.<name>.x, ind.<name>.graph, …); choose the folder that holds \
         them (PyTorch Geometric keeps them in <root>/<Name>/raw)",
        .0.display()
    )]
    NotFound(PathBuf),
    #[error("{}: holds more than one Planetoid data set ({}); choose one by name", .dir.display(), .names.join(", "))]
    Ambiguous { dir: PathBuf, names: Vec<String> },
}

/// Cora, compiled into the program.
pub fn cora() -> Result<Graph, PlanetoidError> {
    let bytes = |suffix: &str| -> &'static [u8] {
        match suffix {
            "x" => include_bytes!("../../../../assets/planetoid-cora/ind.cora.x"),
            "y" => include_bytes!("../../../../assets/planetoid-cora/ind.cora.y"),
            "tx" => include_bytes!("../../../../assets/planetoid-cora/ind.cora.tx"),
            "ty" => include_bytes!("../../../../assets/planetoid-cora/ind.cora.ty"),
            "allx" => include_bytes!("../../../../assets/planetoid-cora/ind.cora.allx"),
            "ally" => include_bytes!("../../../../assets/planetoid-cora/ind.cora.ally"),
            "graph" => include_bytes!("../../../../assets/planetoid-cora/ind.cora.graph"),
            _ => include_bytes!("../../../../assets/planetoid-cora/ind.cora.test.index"),
        }
    };
    from_files("cora", |suffix| Ok(bytes(suffix).to_vec()), Path::new("assets/planetoid-cora"))
}

/// The Planetoid data set in `dir` (or in `dir/raw`), whose name is read from its files.
pub fn load(dir: &Path) -> Result<Graph, PlanetoidError> {
    let raw = dir.join("raw");
    let dir = if names_in(dir).is_empty() && raw.is_dir() { raw } else { dir.to_path_buf() };
    let names = names_in(&dir);
    match names.as_slice() {
        [] => Err(PlanetoidError::NotFound(dir)),
        [name] => load_named(&dir, name),
        _ => Err(PlanetoidError::Ambiguous { dir, names }),
    }
}

/// The data set `name` (`cora`, `citeseer`, `pubmed`, …) in `dir`.
pub fn load_named(dir: &Path, name: &str) -> Result<Graph, PlanetoidError> {
    from_files(
        name,
        |suffix| {
            let path = dir.join(format!("ind.{name}.{suffix}"));
            files::read_capped(&path, PICKLE).map_err(|e| {
                let what = if e.kind() == std::io::ErrorKind::NotFound {
                    format!("missing: a Planetoid data set needs all of ind.{name}.{{{}}}", SUFFIXES.join(","))
                } else {
                    format!("cannot read it ({e})")
                };
                PlanetoidError::File { path, message: what }
            })
        },
        dir,
    )
}

/// Whether `dir` (or its `raw` folder) holds Planetoid files.
pub fn is_planetoid(dir: &Path) -> bool {
    !names_in(dir).is_empty() || !names_in(&dir.join("raw")).is_empty()
}

/// Data set names with an `ind.<name>.x` file in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| Some(f.strip_prefix("ind.")?.strip_suffix(".x")?.to_owned()))
        .filter(|n| !n.is_empty() && !n.contains('.'))
        .collect();
    names.sort();
    names
}

/// Reads the data set `name` from the bytes `read` gives for each suffix; `dir` names the files
/// in messages.
pub fn from_files(
    name: &str,
    read: impl Fn(&str) -> Result<Vec<u8>, PlanetoidError>,
    dir: &Path,
) -> Result<Graph, PlanetoidError> {
    let path = |suffix: &str| dir.join(format!("ind.{name}.{suffix}"));
    let fail = |suffix: &str, message: String| PlanetoidError::File { path: path(suffix), message };
    let value = |suffix: &str| -> Result<Value, PlanetoidError> {
        let bytes = read(suffix)?;
        pickle::parse(&bytes).map_err(|e| fail(suffix, format!("not a Planetoid pickle: {e}")))
    };
    let matrix = |suffix: &str| csr(&value(suffix)?).map_err(|m| fail(suffix, m));
    let one_hot = |suffix: &str| labels(&value(suffix)?).map_err(|m| fail(suffix, m));

    let x = matrix("x")?;
    let (y, classes_y) = one_hot("y")?;
    let allx = matrix("allx")?;
    let (ally, classes) = one_hot("ally")?;
    let tx = matrix("tx")?;
    let (ty, classes_ty) = one_hot("ty")?;
    let index_bytes = read("test.index")?;
    let test_order = test_index(&index_bytes).map_err(|m| fail("test.index", m))?;

    // Shapes that must agree.
    if classes_y != classes || classes_ty != classes {
        return Err(fail("ty", format!("label widths differ: y {classes_y}, ty {classes_ty}, ally {classes} classes")));
    }
    if x.cols != allx.cols || tx.cols != allx.cols {
        return Err(fail("tx", format!("feature widths differ: x {}, tx {}, allx {}", x.cols, tx.cols, allx.cols)));
    }
    if x.rows != y.len() || allx.rows != ally.len() || tx.rows != ty.len() {
        return Err(fail(
            "ally",
            format!(
                "features and labels disagree in length: x {} / y {}, allx {} / ally {}, tx {} / ty {}",
                x.rows,
                y.len(),
                allx.rows,
                ally.len(),
                tx.rows,
                ty.len()
            ),
        ));
    }
    if test_order.len() != tx.rows {
        return Err(fail("test.index", format!("{} test ids for {} rows of tx", test_order.len(), tx.rows)));
    }
    if y.len() + VALIDATION > allx.rows {
        return Err(fail(
            "allx",
            format!("{} rows: fewer than the {} training and {VALIDATION} validation nodes", allx.rows, y.len()),
        ));
    }
    let known = allx.rows;
    let (Some(&low), Some(&high)) = (test_order.iter().min(), test_order.iter().max()) else {
        return Err(fail("test.index", "no test ids".into()));
    };
    if low < known {
        return Err(fail("test.index", format!("test id {low} is one of allx's {known} rows; test ids follow them")));
    }
    // Citeseer leaves ~1.5% of its test range unlisted; a range far wider than the ids would be a
    // damaged file (and an allocation the file does not pay for).
    let span = high - known + 1;
    if span > 2 * test_order.len() + 64 {
        return Err(fail(
            "test.index",
            format!("test ids spread over {span} ids for {} rows of tx (a damaged file?)", test_order.len()),
        ));
    }
    let num_nodes = high + 1;

    // Rows in node order: allx's, then each test node's tx row, zero where none.
    let mut rows: Vec<Option<usize>> = (0..known).map(Some).collect();
    rows.resize(num_nodes, None);
    let mut seen = vec![false; num_nodes];
    for (k, &node) in test_order.iter().enumerate() {
        if std::mem::replace(&mut seen[node], true) {
            return Err(fail("test.index", format!("test id {node} is listed twice")));
        }
        rows[node] = Some(known + k);
    }
    let stacked = stack(&allx, &tx);
    let features = stacked.gather(&rows);
    let all_labels: Vec<Option<u32>> = ally.iter().chain(&ty).copied().collect();
    let labels: Vec<Option<u32>> = rows.iter().map(|r| r.and_then(|r| all_labels[r])).collect();

    let graph_value = value("graph")?;
    let pairs = adjacency(&graph_value, num_nodes).map_err(|m| fail("graph", m))?;
    let mut test = test_order;
    test.sort_unstable();
    Ok(Graph {
        name: name.to_owned(),
        num_nodes,
        features,
        labels,
        num_classes: classes,
        edges: undirected_edges(pairs),
        split: Split { train: (0..y.len()).collect(), val: (y.len()..y.len() + VALIDATION).collect(), test },
    })
}

/// `a` above `b`.
fn stack(a: &SparseRows, b: &SparseRows) -> SparseRows {
    let mut out = a.clone();
    out.rows += b.rows;
    let offset = a.nnz();
    out.indptr.extend(b.indptr[1..].iter().map(|p| p + offset));
    out.indices.extend_from_slice(&b.indices);
    out.values.extend_from_slice(&b.values);
    out
}

fn array<'v>(value: Option<&'v Value>, what: &str) -> Result<&'v Array, String> {
    match value {
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("its {what} is not a numpy array")),
        None => Err(format!("its {what} is missing")),
    }
}

/// A scipy CSR matrix's fields, checked.
fn csr(value: &Value) -> Result<SparseRows, String> {
    let Value::Csr(_) = value else {
        return Err("expected a scipy CSR matrix of features".into());
    };
    let shape = match value.get("_shape") {
        Some(Value::Tuple(dims)) => match dims.as_slice() {
            [Value::Int(r), Value::Int(c)] => (usize::try_from(*r), usize::try_from(*c)),
            _ => return Err("its shape is not two integers".into()),
        },
        _ => return Err("the matrix has no shape".into()),
    };
    let (Ok(rows), Ok(cols)) = shape else {
        return Err("a negative matrix dimension".into());
    };
    let indptr = array(value.get("indptr"), "indptr")?.to_i64()?;
    let indices = array(value.get("indices"), "indices")?.to_i64()?;
    let values = array(value.get("data"), "data")?.to_f64()?;
    if indptr.len() != rows + 1 {
        return Err(format!("indptr has {} entries for {rows} rows", indptr.len()));
    }
    if indices.len() != values.len() {
        return Err(format!("{} column indices for {} values", indices.len(), values.len()));
    }
    let mut pointers = Vec::with_capacity(indptr.len());
    let mut last = 0;
    for &p in &indptr {
        let p = usize::try_from(p).map_err(|_| "a negative row pointer".to_string())?;
        if p < last || p > values.len() {
            return Err(format!("row pointers out of order or past the {} values", values.len()));
        }
        last = p;
        pointers.push(p);
    }
    if pointers.first() != Some(&0) || pointers.last() != Some(&values.len()) {
        return Err("row pointers do not span the values".into());
    }
    let indices = indices
        .iter()
        .map(|&c| u32::try_from(c).ok().filter(|&c| (c as usize) < cols))
        .collect::<Option<Vec<u32>>>()
        .ok_or_else(|| format!("a column index outside 0..{cols}"))?;
    #[allow(clippy::cast_possible_truncation)]
    let values = values.into_iter().map(|v| v as f32).collect();
    Ok(SparseRows { rows, cols, indptr: pointers, indices, values })
}

/// One-hot label rows (`rows × classes`): each row's class, `None` for an all-zero row.
fn labels(value: &Value) -> Result<(Vec<Option<u32>>, usize), String> {
    let Value::Array(a) = value else {
        return Err("expected a numpy array of one-hot labels".into());
    };
    let [rows, classes] = a.shape.as_slice() else {
        return Err(format!("expected one-hot labels (rows × classes), found shape {:?}", a.shape));
    };
    let (rows, classes) = (*rows, *classes);
    if classes == 0 || classes > u32::MAX as usize {
        return Err(format!("{classes} classes"));
    }
    let v = a.to_f64()?;
    let at = |r: usize, c: usize| if a.fortran { v[c * rows + r] } else { v[r * classes + c] };
    let mut out = Vec::with_capacity(rows);
    for r in 0..rows {
        let hot: Vec<usize> = (0..classes).filter(|&c| at(r, c) != 0.0).collect();
        out.push(match hot.as_slice() {
            [] => None,
            #[allow(clippy::cast_possible_truncation)]
            [c] => Some(*c as u32),
            _ => return Err(format!("label row {r} has {} classes set; one-hot rows have one", hot.len())),
        });
    }
    Ok((out, classes))
}

/// The node ids of `test.index`, one per line.
fn test_index(bytes: &[u8]) -> Result<Vec<usize>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not text".to_string())?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| l.trim().parse::<usize>().map_err(|_| format!("line {}: `{}` is not a node id", i + 1, l.trim())))
        .collect()
}

/// The (node, neighbour) pairs of a dict of adjacency lists.
fn adjacency(value: &Value, num_nodes: usize) -> Result<Vec<(u32, u32)>, String> {
    let (Value::DefaultDict(items) | Value::Dict(items)) = value else {
        return Err("expected a dict of adjacency lists".into());
    };
    let id = |v: &Value| -> Result<u32, String> {
        match v {
            Value::Int(i) if usize::try_from(*i).is_ok_and(|i| i < num_nodes) => {
                u32::try_from(*i).map_err(|_| format!("node id {i} too large"))
            }
            Value::Int(i) => Err(format!("node id {i} outside the {num_nodes} nodes")),
            other => Err(format!("a node id that is {other:?}")),
        }
    };
    let mut pairs = Vec::new();
    for (node, list) in items {
        let node = id(node)?;
        let Value::List(neighbours) = list else {
            return Err(format!("node {node}'s neighbours are not a list"));
        };
        for n in neighbours {
            pairs.push((node, id(n)?));
        }
    }
    Ok(pairs)
}
