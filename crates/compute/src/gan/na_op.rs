//! Neighbourhood attention as one candle op, so that networks built from candle's ops (the
//! generator) differentiate through it: `qkv` is `[3, batch, heads, height, width, channels]`
//! (queries, keys and values stacked, each a contiguous block for [`super::na`]), `bias` each
//! head's relative-position bias one after the other; the output is
//! `[batch, heads, height, width, channels]`. CPU only. The backward recomputes the attention
//! weights (a forward's worth of work, and no state kept between the passes).

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Storage, Tensor};

use super::na::{self, NaShape, Window};
use crate::cpu_f32_slice;

/// The op: one window per head and the logits' scale.
#[derive(Clone, Debug)]
pub struct NaOp {
    pub windows: Vec<Window>,
    pub scale: f32,
}

/// `softmax(scale·q·k + bias)·v` over each pixel's window (see [`super::na`]).
pub fn neighbourhood_attention(qkv: &Tensor, bias: &Tensor, windows: &[Window], scale: f32) -> Result<Tensor> {
    qkv.apply_op2(bias, NaOp { windows: windows.to_vec(), scale })
}

impl NaOp {
    /// The shape of q, k and v from `qkv`'s dimensions.
    fn shape_of(&self, dims: &[usize]) -> Result<NaShape> {
        let &[three, batch, heads, height, width, channels] = dims else {
            candle_core::bail!(
                "neighbourhood attention: qkv must be [3, batch, heads, height, width, channels], got {dims:?}"
            );
        };
        if three != 3 {
            candle_core::bail!("neighbourhood attention: qkv's first dimension must stack q, k and v (3), got {three}");
        }
        if heads != self.windows.len() {
            candle_core::bail!("neighbourhood attention: {heads} heads but {} windows", self.windows.len());
        }
        Ok(NaShape { batch, heads, height, width, channels })
    }
}

fn f32_slice_of<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    cpu_f32_slice(storage, layout, "neighbourhood attention", what)
}

/// The CPU storage and layout of `t` (contiguous), or an error naming the op.
fn cpu_values(t: &Tensor, what: &str) -> Result<Vec<f32>> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("neighbourhood attention runs on the CPU only");
    };
    Ok(f32_slice_of(cpu, layout, what)?.to_vec())
}

impl CustomOp2 for NaOp {
    fn name(&self) -> &'static str {
        "neighbourhood-attention"
    }

    fn cpu_fwd(
        &self,
        qkv_storage: &CpuStorage,
        qkv_layout: &Layout,
        bias_storage: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let shape = self.shape_of(qkv_layout.dims())?;
        let qkv = f32_slice_of(qkv_storage, qkv_layout, "qkv")?;
        let bias = f32_slice_of(bias_storage, bias_layout, "bias")?;
        let n = shape.len();
        let f = na::forward(shape, &self.windows, &qkv[..n], &qkv[n..2 * n], &qkv[2 * n..], bias, self.scale)
            .map_err(candle_core::Error::wrap)?;
        let dims = (shape.batch, shape.heads, shape.height, shape.width, shape.channels);
        Ok((CpuStorage::F32(f.out), Shape::from(dims)))
    }

    fn bwd(
        &self,
        qkv: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad_out: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let shape = self.shape_of(qkv.dims())?;
        let qkv_values = cpu_values(qkv, "qkv")?;
        let bias_values = cpu_values(bias, "bias")?;
        let grad = cpu_values(grad_out, "output gradient")?;
        let n = shape.len();
        let (q, k, v) = (&qkv_values[..n], &qkv_values[n..2 * n], &qkv_values[2 * n..]);
        let wrap = candle_core::Error::wrap;
        let f = na::forward(shape, &self.windows, q, k, v, &bias_values, self.scale).map_err(wrap)?;
        let g = na::backward(shape, &self.windows, q, k, v, &f.attention, &grad, self.scale).map_err(wrap)?;
        let mut d_qkv = g.q;
        d_qkv.extend_from_slice(&g.k);
        d_qkv.extend_from_slice(&g.v);
        let d_qkv = Tensor::from_vec(d_qkv, qkv.dims(), qkv.device())?;
        let d_bias = if bias_values.is_empty() {
            bias.zeros_like()?
        } else {
            Tensor::from_vec(g.bias, bias.dims(), bias.device())?
        };
        Ok((Some(d_qkv), Some(d_bias)))
    }
}
