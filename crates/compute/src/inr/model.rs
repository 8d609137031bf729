//! The SIREN as a candle model: one trainable flat parameter vector, the fused forward (CPU, f32)
//! and the same network built from candle's generic ops (reference, and other devices).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Module, Result, Tensor, Var};

use super::siren_op::{LayerSlot, SirenOp, Workspace, layer_slots};
use super::weights::{LayerWeights, SirenConfig, SirenWeights};

/// A SIREN whose parameters are one candle `Var`, laid out layer by layer as `W` (fan_out ×
/// fan_in, row-major) then `b`.
pub struct Siren {
    config: SirenConfig,
    slots: Vec<LayerSlot>,
    params: Var,
    workspace: Arc<Mutex<Workspace>>,
    forward_count: AtomicU64,
}

impl Siren {
    /// Builds the model from plain weights on `device` with element type `dtype`
    /// (`F32` for training; `F64` for precise reference computations in tests).
    pub fn new(weights: &SirenWeights, device: &Device, dtype: DType) -> Result<Self> {
        let flat = weights.flatten();
        let params = Tensor::from_vec(flat, weights.config.num_parameters(), device)?.to_dtype(dtype)?;
        Ok(Self {
            config: weights.config,
            slots: layer_slots(&weights.config),
            params: Var::from_tensor(&params)?,
            workspace: Arc::default(),
            forward_count: AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &SirenConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        self.params.device()
    }

    pub fn vars(&self) -> Vec<Var> {
        vec![self.params.clone()]
    }

    /// `(weight: (fan_out, fan_in), bias: (fan_out))` of every layer, input to output, as views of
    /// the parameter vector (gradients flow back into it).
    pub fn layer_tensors(&self) -> Result<Vec<(Tensor, Tensor)>> {
        let params = self.params.as_tensor();
        self.slots
            .iter()
            .map(|s| {
                let w = params.narrow(0, s.weight_offset, s.fan_in * s.fan_out)?.reshape((s.fan_out, s.fan_in))?;
                let b = params.narrow(0, s.bias_offset, s.fan_out)?;
                Ok((w, b))
            })
            .collect()
    }

    /// Copies the current parameters out (a snapshot that later training does not change).
    pub fn to_weights(&self) -> Result<SirenWeights> {
        let flat: Vec<f32> = self.params.as_tensor().to_dtype(DType::F32)?.to_vec1()?;
        let layers = self
            .slots
            .iter()
            .map(|s| LayerWeights {
                weight: flat[s.weight_offset..s.bias_offset].to_vec(),
                bias: flat[s.bias_offset..s.bias_offset + s.fan_out].to_vec(),
            })
            .collect();
        Ok(SirenWeights { config: self.config, layers })
    }

    /// The forward pass built from candle's generic ops only.
    pub fn forward_unfused(&self, coords: &Tensor) -> Result<Tensor> {
        let omega = f64::from(self.config.omega0);
        let layers = self.layer_tensors()?;
        let last = layers.len() - 1;
        let mut h = coords.clone();
        for (index, (w, b)) in layers.iter().enumerate() {
            let z = h.matmul(&w.t()?)?.broadcast_add(b)?;
            h = if index == last { z } else { (z * omega)?.sin()? };
        }
        Ok(h)
    }

    /// Forward pass without gradients (rendering, metrics).
    pub fn evaluate(&self, coords: &Tensor) -> Result<Tensor> {
        if self.fused_applies(coords) {
            coords.contiguous()?.apply_op2_no_bwd(self.params.as_tensor(), &SirenOp::evaluation(&self.config))
        } else {
            self.forward_unfused(coords)
        }
    }

    fn fused_applies(&self, coords: &Tensor) -> bool {
        coords.device().is_cpu() && self.device().is_cpu() && coords.dtype() == DType::F32
    }
}

impl Module for Siren {
    /// `coords: (n, 2)` → `(n, out_features)`, differentiable with respect to the parameters.
    /// Uses the fused op for f32 on the CPU; its backward must follow before the next forward.
    fn forward(&self, coords: &Tensor) -> Result<Tensor> {
        if self.fused_applies(coords) {
            let generation = self.forward_count.fetch_add(1, Ordering::Relaxed) + 1;
            let op = SirenOp::training(&self.config, Arc::clone(&self.workspace), generation);
            coords.contiguous()?.apply_op2(self.params.as_tensor(), op)
        } else {
            self.forward_unfused(coords)
        }
    }
}
