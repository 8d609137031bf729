//! Checkpoints: a folder with `nerf.safetensors` (field weights under their layer names, the
//! occupancy grid) and `config.json` (everything else needed to render or resume).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use glam::Vec3;
use serde::{Deserialize, Serialize};

use super::camera::SceneBox;
use super::field::{Dense, FieldConfig, FieldWeights};
use super::hash_encoding::HashGrid;
use super::orbit::Orbit;
use super::sampler::{MarchSettings, OccupancyGrid};
use super::train::NerfSnapshot;

pub const WEIGHTS_FILE: &str = "nerf.safetensors";
pub const CONFIG_FILE: &str = "config.json";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: cannot read ({source}). Pass the folder that `sparsefield nerf train --out` wrote.")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot write ({source}). Check that the folder exists and is writable.")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
}

/// The JSON half of a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointConfig {
    pub format: String,
    pub field: FieldConfig,
    pub march: MarchSettings,
    pub scene_box: SceneBox,
    pub occupancy_resolution: u32,
    pub occupancy_threshold: f32,
    pub background: [f32; 3],
    pub step: u64,
    /// Where turntables and the viewer start.
    #[serde(default)]
    pub orbit: Orbit,
    /// Free-form facts for people (data set, metrics).
    #[serde(default)]
    pub info: HashMap<String, serde_json::Value>,
}

const FORMAT: &str = "sparsefield-nerf-1";

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Writes `snapshot` into `dir` (created if needed), with `info` in the JSON.
pub fn save(
    snapshot: &NerfSnapshot,
    orbit: &Orbit,
    dir: &Path,
    info: HashMap<String, serde_json::Value>,
) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Write { path: dir.to_owned(), source })?;
    let weights_path = dir.join(WEIGHTS_FILE);
    let format_err = |reason: String| CheckpointError::Format { path: weights_path.clone(), reason };
    let w = &snapshot.weights;
    let occ = &snapshot.occupancy;
    let r = occ.resolution as usize;
    let occupied: Vec<f32> = occ.occupied.iter().map(|&o| if o { 1.0 } else { 0.0 }).collect();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = vec![
        ("encoding.table".into(), vec![w.table.len()], f32_bytes(&w.table)),
        ("occupancy.density".into(), vec![r, r, r], f32_bytes(&occ.density)),
        ("occupancy.occupied".into(), vec![r, r, r], f32_bytes(&occupied)),
    ];
    for d in w.density.iter().chain(&w.colour) {
        tensors.push((format!("{}.weight", d.name), vec![d.fan_out, d.fan_in], f32_bytes(&d.weight)));
        tensors.push((format!("{}.bias", d.name), vec![d.fan_out], f32_bytes(&d.bias)));
    }
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format_err(e.to_string()))?;
    let bytes = safetensors::serialize(views, None).map_err(|e| format_err(e.to_string()))?;
    crate::files::write_atomic(&weights_path, bytes)
        .map_err(|source| CheckpointError::Write { path: weights_path.clone(), source })?;
    let config = CheckpointConfig {
        format: FORMAT.into(),
        field: w.config,
        march: snapshot.march,
        scene_box: occ.scene_box,
        occupancy_resolution: occ.resolution,
        occupancy_threshold: occ.threshold,
        background: snapshot.background.to_array(),
        step: snapshot.step,
        orbit: *orbit,
        info,
    };
    let config_path = dir.join(CONFIG_FILE);
    let json = serde_json::to_string_pretty(&config)
        .map_err(|e| CheckpointError::Format { path: config_path.clone(), reason: e.to_string() })?;
    crate::files::write_atomic(&config_path, json)
        .map_err(|source| CheckpointError::Write { path: config_path, source })
}

/// Reads a checkpoint folder written by [`save`], checking every shape.
/// The sides a checkpoint's scene box may have (the loader's boxes are 3 to 384 units wide).
const MIN_BOX_SIDE: f32 = 1e-6;
const MAX_BOX_SIDE: f32 = 1e6;

pub fn load(dir: &Path) -> Result<(NerfSnapshot, CheckpointConfig), CheckpointError> {
    let config_path = dir.join(CONFIG_FILE);
    let json = crate::files::read_text_capped(&config_path, crate::files::JSON)
        .map_err(|source| CheckpointError::Read { path: config_path.clone(), source })?;
    let config_err = |reason: String| CheckpointError::Format { path: config_path.clone(), reason };
    let config: CheckpointConfig =
        serde_json::from_str(&json).map_err(|e| config_err(format!("not a NeRF checkpoint configuration ({e})")))?;
    if config.format != FORMAT {
        return Err(config_err(format!("format `{}` is not `{FORMAT}`", config.format)));
    }
    config.field.validate().map_err(&config_err)?;
    if !(1..=512).contains(&config.occupancy_resolution) {
        return Err(config_err(format!("occupancy resolution {} is out of range", config.occupancy_resolution)));
    }
    let size = config.scene_box.size();
    if !(size.is_finite() && size.min_element() > 0.0) {
        return Err(config_err("the scene box is empty or not finite".into()));
    }
    if !(MIN_BOX_SIDE..=MAX_BOX_SIDE).contains(&size.max_element())
        || !(MIN_BOX_SIDE..=MAX_BOX_SIDE).contains(&size.min_element())
    {
        return Err(config_err(format!(
            "the scene box is {:e} × {:e} × {:e}; each side must be {MIN_BOX_SIDE:e} to {MAX_BOX_SIDE:e}",
            size.x, size.y, size.z
        )));
    }
    // Bounds that keep marching finite: at most 65536 steps across the box's diagonal.
    let min_step = size.length() / 65_536.0;
    if !(config.march.step.is_finite() && config.march.step >= min_step) {
        return Err(config_err(format!(
            "the march step {:e} is below {min_step:e}, 1/65536 of the scene box's diagonal (too many samples per ray)",
            config.march.step
        )));
    }
    if !(1..=65_536).contains(&config.march.max_samples) {
        return Err(config_err("the samples per ray must be 1–65536".into()));
    }
    config.orbit.validate().map_err(&config_err)?;
    if !config.background.iter().all(|c| (0.0..=1.0).contains(c)) {
        return Err(config_err(format!("the background colour {:?} must have channels in [0, 1]", config.background)));
    }

    let weights_path = dir.join(WEIGHTS_FILE);
    let bytes = crate::files::read_capped(&weights_path, crate::files::NERF_WEIGHTS)
        .map_err(|source| CheckpointError::Read { path: weights_path.clone(), source })?;
    let format_err = |reason: String| CheckpointError::Format { path: weights_path.clone(), reason };
    let tensors = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| format_err(format!("not a safetensors file ({e})")))?;
    let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>, CheckpointError> {
        let view = tensors.tensor(name).map_err(|_| format_err(format!("tensor `{name}` is missing")))?;
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(format_err(format!("tensor `{name}` is {:?}, expected F32", view.dtype())));
        }
        if view.shape() != shape {
            return Err(format_err(format!("tensor `{name}` has shape {:?}, expected {shape:?}", view.shape())));
        }
        let values: Vec<f32> =
            view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(format_err(format!("tensor `{name}` holds NaN or infinite values")));
        }
        Ok(values)
    };
    let table = read("encoding.table", &[config.field.hash.num_params()])?;
    let mut density = Vec::new();
    let mut colour = Vec::new();
    for (name, fan_in, fan_out) in config.field.layers() {
        let dense = Dense {
            weight: read(&format!("{name}.weight"), &[fan_out, fan_in])?,
            bias: read(&format!("{name}.bias"), &[fan_out])?,
            name: name.clone(),
            fan_in,
            fan_out,
        };
        if name.starts_with("density") { density.push(dense) } else { colour.push(dense) }
    }
    let r = config.occupancy_resolution as usize;
    let occ_density = read("occupancy.density", &[r, r, r])?;
    let occupied = read("occupancy.occupied", &[r, r, r])?.into_iter().map(|v| v > 0.5).collect();
    let weights =
        FieldWeights { config: config.field, grid: Arc::new(HashGrid::new(config.field.hash)), table, density, colour };
    let occupancy = OccupancyGrid {
        resolution: config.occupancy_resolution,
        scene_box: config.scene_box,
        density: occ_density,
        occupied,
        threshold: config.occupancy_threshold,
    };
    let snapshot = NerfSnapshot {
        weights: Arc::new(weights),
        occupancy: Arc::new(occupancy),
        march: config.march,
        background: Vec3::from_array(config.background),
        step: config.step,
    };
    Ok((snapshot, config))
}
