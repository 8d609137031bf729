//! Closed-form (forward-mode) derivatives of a SIREN with respect to its input coordinates.
//!
//! Each layer carries the value and its first and second partial derivatives ("a 2-jet").
//! For `u = ω·(W·h + b)` and `y = sin u`:
//! `y_x = cos u · u_x`, `y_xx = cos u · u_xx − sin u · u_x²`, `y_xy = cos u · u_xy − sin u · u_x·u_y`.
//! Linear layers map each derivative through `W` (no bias). candle's own second-order gradients are
//! not used: they are silently wrong in the pinned version.

use candle_core::{Result, Tensor};

use super::model::Siren;

/// Value and derivatives up to second order, each `(n, out_features)`.
pub struct Jet2 {
    pub value: Tensor,
    pub dx: Tensor,
    pub dy: Tensor,
    pub dxx: Tensor,
    pub dxy: Tensor,
    pub dyy: Tensor,
}

impl Jet2 {
    /// `√(f_x² + f_y²)` per output channel.
    pub fn gradient_magnitude(&self) -> Result<Tensor> {
        (self.dx.sqr()? + self.dy.sqr()?)?.sqrt()
    }

    /// `f_xx + f_yy` per output channel.
    pub fn laplacian(&self) -> Result<Tensor> {
        &self.dxx + &self.dyy
    }
}

/// Evaluates the network and its input derivatives at `coords: (n, 2)`.
pub fn jet2(model: &Siren, coords: &Tensor) -> Result<Jet2> {
    let (n, _) = coords.dims2()?;
    let device = coords.device();
    let dtype = coords.dtype();
    let unit = |col: usize| -> Result<Tensor> {
        let mut e = [0.0_f32; 2];
        e[col] = 1.0;
        Tensor::from_slice(&e, (1, 2), device)?.to_dtype(dtype)?.broadcast_as((n, 2))?.contiguous()
    };
    let zeros = Tensor::zeros((n, 2), dtype, device)?;
    let mut jet =
        Jet2 { value: coords.clone(), dx: unit(0)?, dy: unit(1)?, dxx: zeros.clone(), dxy: zeros.clone(), dyy: zeros };
    let omega = f64::from(model.config().omega0);
    let num_layers = model.config().layer_shapes().len();
    for (index, (w, b)) in model.layer_tensors()?.iter().enumerate() {
        let wt = w.t()?;
        let lin = |t: &Tensor| t.matmul(&wt);
        let value = lin(&jet.value)?.broadcast_add(b)?;
        let (dx, dy, dxx, dxy, dyy) = (lin(&jet.dx)?, lin(&jet.dy)?, lin(&jet.dxx)?, lin(&jet.dxy)?, lin(&jet.dyy)?);
        if index + 1 == num_layers {
            jet = Jet2 { value, dx, dy, dxx, dxy, dyy };
            break;
        }
        let (u, ux, uy) = ((value * omega)?, (dx * omega)?, (dy * omega)?);
        let (uxx, uxy, uyy) = ((dxx * omega)?, (dxy * omega)?, (dyy * omega)?);
        let (s, c) = (u.sin()?, u.cos()?);
        jet = Jet2 {
            dxx: ((&c * &uxx)? - (&s * ux.sqr()?)?)?,
            dxy: ((&c * &uxy)? - ((&s * &ux)? * &uy)?)?,
            dyy: ((&c * &uyy)? - (&s * uy.sqr()?)?)?,
            dx: (&c * &ux)?,
            dy: (&c * &uy)?,
            value: s,
        };
    }
    Ok(jet)
}
