//! A plain format for one's own graphs: a folder of CSV files.
//!
//! - `edges.csv`: `source,target` per line (node ids 0, 1, …; made undirected);
//! - `labels.csv`: `node,label` (labels are integers or names; names are numbered in sorted order);
//! - `features.csv` (optional): dense rows `node,v1,v2,…`, or sparse entries under the header
//!   `node,feature,value`; without it every node gets its own one-hot feature;
//! - `split.csv` (optional): `node,train|val|test`; without it a Planetoid-like split is drawn
//!   (20 training nodes per class, up to 500 validation and 1000 test nodes, seeded).
//!
//! A first line that is not numeric is a header. Nodes number 1 + the largest id in any file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::graph::{Graph, SparseRows, undirected_edges};
use crate::files;

/// The most nodes and feature columns the loader accepts.
pub const MAX_NODES: usize = 5_000_000;
pub const MAX_FEATURES: usize = 1_000_000;

#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct PlainError {
    pub path: PathBuf,
    pub message: String,
}

/// Whether `dir` looks like a plain graph folder (it has `edges.csv`).
pub fn is_plain(dir: &Path) -> bool {
    dir.join("edges.csv").is_file()
}

/// One CSV file's data lines: `(line number, fields)`, the header (if any) skipped.
struct Table {
    path: PathBuf,
    header: Option<Vec<String>>,
    lines: Vec<(usize, Vec<String>)>,
}

fn read_table(path: &Path) -> Result<Table, PlainError> {
    let err = |message: String| PlainError { path: path.to_path_buf(), message };
    let bytes = files::read_capped(path, files::TABLE).map_err(|e| err(format!("cannot read it ({e})")))?;
    let text =
        String::from_utf8(bytes).map_err(|e| err(format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to())))?;
    let mut header = None;
    let mut lines = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<String> = line.split(',').map(|f| f.trim().to_string()).collect();
        if header.is_none() && lines.is_empty() && fields[0].parse::<f64>().is_err() {
            header = Some(fields.iter().map(|f| f.to_lowercase()).collect());
            continue;
        }
        lines.push((k + 1, fields));
    }
    Ok(Table { path: path.to_path_buf(), header, lines })
}

impl Table {
    fn err(&self, line: usize, message: impl std::fmt::Display) -> PlainError {
        PlainError { path: self.path.clone(), message: format!("line {line}: {message}") }
    }

    fn node(&self, line: usize, field: &str) -> Result<usize, PlainError> {
        let id: usize =
            field.parse().map_err(|_| self.err(line, format!("node id {field:?} is not a non-negative integer")))?;
        if id >= MAX_NODES {
            return Err(self.err(line, format!("node id {id} is too large (at most {} nodes)", MAX_NODES)));
        }
        Ok(id)
    }

    fn columns(&self, line: usize, fields: &[String], want: usize) -> Result<(), PlainError> {
        if fields.len() == want {
            Ok(())
        } else {
            Err(self.err(line, format!("{} fields, expected {want}", fields.len())))
        }
    }
}

/// Loads the plain graph folder `dir`.
pub fn load(dir: &Path) -> Result<Graph, PlainError> {
    let edges_table = read_table(&dir.join("edges.csv"))?;
    let mut pairs = Vec::with_capacity(edges_table.lines.len());
    let mut nodes = 0_usize;
    for (line, fields) in &edges_table.lines {
        edges_table.columns(*line, fields, 2)?;
        let (a, b) = (edges_table.node(*line, &fields[0])?, edges_table.node(*line, &fields[1])?);
        nodes = nodes.max(a + 1).max(b + 1);
        pairs.push((a, b));
    }
    let labels_table = read_table(&dir.join("labels.csv"))?;
    let mut named: Vec<(usize, &str)> = Vec::with_capacity(labels_table.lines.len());
    for (line, fields) in &labels_table.lines {
        labels_table.columns(*line, fields, 2)?;
        let node = labels_table.node(*line, &fields[0])?;
        if fields[1].is_empty() {
            return Err(labels_table.err(*line, "empty label"));
        }
        nodes = nodes.max(node + 1);
        named.push((node, fields[1].as_str()));
    }
    // Classes: integers in numeric order, names in sorted order.
    let numeric = named.iter().all(|(_, l)| l.parse::<u64>().is_ok());
    let mut classes: BTreeMap<(u64, String), u32> = BTreeMap::new();
    for (_, l) in &named {
        classes.insert((if numeric { l.parse().unwrap_or(0) } else { 0 }, (*l).to_string()), 0);
    }
    if classes.len() < 2 {
        return Err(PlainError {
            path: labels_table.path.clone(),
            message: format!("{} class(es); node classification needs at least 2", classes.len()),
        });
    }
    for (i, v) in classes.values_mut().enumerate() {
        *v = u32::try_from(i).unwrap_or(u32::MAX);
    }
    let features_path = dir.join("features.csv");
    let features_table = if features_path.is_file() { Some(read_table(&features_path)?) } else { None };
    if let Some(t) = &features_table {
        for (line, fields) in &t.lines {
            nodes = nodes.max(t.node(*line, &fields[0])? + 1);
        }
    }
    let mut labels = vec![None; nodes];
    for ((node, l), (line, _)) in named.iter().zip(&labels_table.lines) {
        let class = classes[&(if numeric { l.parse().unwrap_or(0) } else { 0 }, (*l).to_string())];
        if labels[*node].is_some_and(|c| c != class) {
            return Err(labels_table.err(*line, format!("node {node} has a second, different label")));
        }
        labels[*node] = Some(class);
    }
    let features = match &features_table {
        Some(t) => features_of(t, nodes)?,
        None => one_hot(nodes),
    };
    let num_classes = classes.len();
    let split_path = dir.join("split.csv");
    let split = if split_path.is_file() {
        let t = read_table(&split_path)?;
        let mut split = super::graph::Split::default();
        for (line, fields) in &t.lines {
            t.columns(*line, fields, 2)?;
            let node = t.node(*line, &fields[0])?;
            if node >= nodes {
                return Err(t.err(*line, format!("node {node} is not in the graph (nodes 0–{})", nodes - 1)));
            }
            match fields[1].to_lowercase().as_str() {
                "train" => split.train.push(node),
                "val" | "valid" | "validation" => split.val.push(node),
                "test" => split.test.push(node),
                other => return Err(t.err(*line, format!("split {other:?}: use train, val or test"))),
            }
        }
        if split.train.is_empty() {
            return Err(PlainError { path: split_path, message: "no training nodes".into() });
        }
        split
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        super::graph::planetoid_like_split(&labels, num_classes, &mut rng)
    };
    let edges =
        undirected_edges(pairs.into_iter().filter_map(|(a, b)| Some((u32::try_from(a).ok()?, u32::try_from(b).ok()?))));
    let name = dir.file_name().map_or_else(|| "graph".to_string(), |n| n.to_string_lossy().into_owned());
    Ok(Graph { name, num_nodes: nodes, features, labels, num_classes, edges, split })
}

fn one_hot(nodes: usize) -> SparseRows {
    SparseRows {
        rows: nodes,
        cols: nodes,
        indptr: (0..=nodes).collect(),
        indices: (0..nodes).filter_map(|i| u32::try_from(i).ok()).collect(),
        values: vec![1.0; nodes],
    }
}

fn features_of(t: &Table, nodes: usize) -> Result<SparseRows, PlainError> {
    let sparse = t.header.as_ref().is_some_and(|h| h.len() == 3 && h[1] == "feature" && h[2] == "value");
    let mut entries: Vec<(usize, u32, f32)> = Vec::new();
    let mut cols = 0_usize;
    for (line, fields) in &t.lines {
        let node = t.node(*line, &fields[0])?;
        let value = |field: &str| -> Result<f32, PlainError> {
            let v: f32 = field.parse().map_err(|_| t.err(*line, format!("{field:?} is not a number")))?;
            if v.is_finite() { Ok(v) } else { Err(t.err(*line, format!("{field:?} is not finite"))) }
        };
        if sparse {
            t.columns(*line, fields, 3)?;
            let feature: usize = fields[1]
                .parse()
                .map_err(|_| t.err(*line, format!("feature {:?} is not a non-negative integer", fields[1])))?;
            if feature >= MAX_FEATURES {
                return Err(t.err(*line, format!("feature {feature} is too large (at most {MAX_FEATURES} columns)")));
            }
            cols = cols.max(feature + 1);
            entries.push((node, u32::try_from(feature).unwrap_or(u32::MAX), value(&fields[2])?));
        } else {
            let width = fields.len() - 1;
            if width == 0 {
                return Err(t.err(*line, "a node id without values"));
            }
            if cols != 0 && width != cols {
                return Err(t.err(*line, format!("{width} values, earlier rows have {cols}")));
            }
            if width > MAX_FEATURES {
                return Err(t.err(*line, format!("{width} values (at most {MAX_FEATURES})")));
            }
            cols = width;
            for (c, f) in fields[1..].iter().enumerate() {
                let v = value(f)?;
                if v != 0.0 {
                    entries.push((node, u32::try_from(c).unwrap_or(u32::MAX), v));
                }
            }
        }
    }
    if cols == 0 {
        return Err(PlainError { path: t.path.clone(), message: "no feature values".into() });
    }
    entries.sort_unstable_by_key(|&(n, c, _)| (n, c));
    if let Some(w) = entries.windows(2).find(|w| (w[0].0, w[0].1) == (w[1].0, w[1].1)) {
        return Err(PlainError {
            path: t.path.clone(),
            message: format!("node {} has feature {} twice", w[0].0, w[0].1),
        });
    }
    let mut out = SparseRows { rows: nodes, cols, ..SparseRows::default() };
    out.indptr = vec![0; nodes + 1];
    for &(n, _, _) in &entries {
        out.indptr[n + 1] += 1;
    }
    for i in 0..nodes {
        out.indptr[i + 1] += out.indptr[i];
    }
    out.indices = entries.iter().map(|e| e.1).collect();
    out.values = entries.iter().map(|e| e.2).collect();
    Ok(out)
}
