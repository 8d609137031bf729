//! The INR lab's compute: SIREN model, fused sine op, closed-form input derivatives, fitting.
//!
//! Coordinates: pixel `(i, j)` of a `W×H` image sits at `x = (2i+1)/W − 1`, `y = (2j+1)/H − 1`
//! (pixel centres, y down), so the unit square `[-1, 1]²` covers the image at any resolution.
//! The network is trained on values `2p − 1` for pixels `p ∈ [0, 1]`.

pub mod classify;
pub mod derivatives;
pub mod fit;
pub mod insp;
pub mod model;
pub mod siren_op;
pub mod taylor;
pub mod weights;

use candle_core::{DType, Device, Tensor};

pub use fit::{BatchMode, FitConfig, FitSummary, InrSnapshot, StepRecord, Trainer, fit};
pub use model::Siren;
pub use weights::{LayerWeights, SirenConfig, SirenWeights, WeightsFileError};

use crate::image_io::{ImageData, ImageError};

/// Points evaluated per chunk when rendering, to bound memory.
const RENDER_CHUNK_POINTS: usize = 16_384;

#[derive(Debug, thiserror::Error)]
pub enum InrError {
    #[error("invalid settings: {0}")]
    Config(String),
    /// A problem with an input file; the message names the file.
    #[error("{0}")]
    Data(String),
    #[error("computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Weights(#[from] WeightsFileError),
}

/// Network input for pixel centres of a `width × height` grid, row-major, `[x0, y0, x1, y1, ..]`.
pub fn pixel_coords(width: u32, height: u32) -> Vec<f32> {
    let mut coords = Vec::with_capacity(width as usize * height as usize * 2);
    for j in 0..height {
        for i in 0..width {
            coords.push(pixel_centre(i, width));
            coords.push(pixel_centre(j, height));
        }
    }
    coords
}

/// `(2i + 1)/n − 1`: the centre of pixel `i` of `n` in `[-1, 1]`.
pub fn pixel_centre(i: u32, n: u32) -> f32 {
    #[allow(clippy::cast_precision_loss)]
    let (i, n) = (i as f32, n as f32);
    (2.0 * i + 1.0) / n - 1.0
}

/// Evaluates `f` over `coords` (`[x, y]` pairs) in chunks and concatenates the `(n, C)` rows.
fn evaluate_in_chunks(
    coords: &[f32],
    device: &Device,
    mut f: impl FnMut(&Tensor) -> candle_core::Result<Tensor>,
) -> candle_core::Result<Vec<f32>> {
    let mut out = Vec::new();
    for chunk in coords.chunks(RENDER_CHUNK_POINTS * 2) {
        let xs = Tensor::from_slice(chunk, (chunk.len() / 2, 2), device)?;
        out.extend(f(&xs)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(out)
}

/// Renders the INR as an image at any resolution (values clamped to [0, 1]).
pub fn reconstruct(model: &Siren, width: u32, height: u32) -> Result<ImageData, InrError> {
    let coords = pixel_coords(width, height);
    let values = evaluate_in_chunks(&coords, model.device(), |xs| model.evaluate(xs))?;
    let pixels = values.into_iter().map(|v| ((v + 1.0) * 0.5).clamp(0.0, 1.0)).collect();
    Ok(ImageData::new(width, height, model.config().out_features, pixels)?)
}

/// Which function of the INR a view shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FieldView {
    /// The fitted image itself.
    Value,
    /// `|∇f|` per channel (closed form).
    GradientMagnitude,
    /// `∇²f = f_xx + f_yy` per channel (closed form).
    Laplacian,
}

impl FieldView {
    pub const ALL: [Self; 3] = [Self::Value, Self::GradientMagnitude, Self::Laplacian];

    pub fn label(self) -> &'static str {
        match self {
            Self::Value => "INR",
            Self::GradientMagnitude => "|∇f|",
            Self::Laplacian => "∇²f",
        }
    }
}

/// The raw per-channel values of a view at pixel centres of `width × height`, row-major `(n, C)`:
/// network output in pixel units (`(f + 1)/2`, not clamped) for [`FieldView::Value`], and the
/// derivatives of that pixel-unit function for the others.
pub fn field_values(model: &Siren, view: FieldView, width: u32, height: u32) -> Result<Vec<f32>, InrError> {
    let coords = pixel_coords(width, height);
    let values = evaluate_in_chunks(&coords, model.device(), |xs| match view {
        FieldView::Value => (model.evaluate(xs)? + 1.0)? * 0.5,
        FieldView::GradientMagnitude => derivatives::jet2(model, xs)?.gradient_magnitude()? * 0.5,
        FieldView::Laplacian => derivatives::jet2(model, xs)?.laplacian()? * 0.5,
    })?;
    Ok(values)
}

/// Colour scales for derivative views: values at or above these map to the top of the colour map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DisplayScales {
    pub gradient: f32,
    pub laplacian: f32,
}

impl DisplayScales {
    pub fn for_view(self, view: FieldView) -> f32 {
        match view {
            FieldView::Value => 1.0,
            FieldView::GradientMagnitude => self.gradient,
            FieldView::Laplacian => self.laplacian,
        }
    }
}

/// Side of the grid on which display scales are estimated.
const SCALE_GRID: u32 = 48;

/// The 99th percentiles of `|∇f|` and `|∇²f|` over a coarse grid: robust colour-map ranges.
pub fn display_scales(model: &Siren) -> Result<DisplayScales, InrError> {
    let percentile = |mut v: Vec<f32>| -> f32 {
        v.retain(|x| x.is_finite());
        if v.is_empty() {
            return 1.0;
        }
        v.iter_mut().for_each(|x| *x = x.abs());
        let k = (v.len() * 99) / 100;
        let k = k.min(v.len() - 1);
        let (_, kth, _) = v.select_nth_unstable_by(k, f32::total_cmp);
        kth.max(1e-6)
    };
    Ok(DisplayScales {
        gradient: percentile(field_values(model, FieldView::GradientMagnitude, SCALE_GRID, SCALE_GRID)?),
        laplacian: percentile(field_values(model, FieldView::Laplacian, SCALE_GRID, SCALE_GRID)?),
    })
}

/// Renders the INR at `width × height` (clamped to [0, 1]) in bands of rows, reporting progress
/// (steps are rows) and stopping early with `Ok(None)` when cancelled. Used for exports.
pub fn render_image(
    weights: &SirenWeights,
    width: u32,
    height: u32,
    control: &crate::control::RunControl,
    on_event: &mut dyn FnMut(crate::control::RunEvent<()>),
) -> Result<Option<ImageData>, InrError> {
    use crate::control::RunEvent;
    if width == 0 || height == 0 || width > 16_384 || height > 16_384 {
        return Err(InrError::Config(format!("render size must be between 1×1 and 16384×16384, got {width}×{height}")));
    }
    weights.validate().map_err(InrError::Config)?;
    let device = crate::default_device();
    let model = Siren::new(weights, &device, DType::F32)?;
    let start = std::time::Instant::now();
    on_event(RunEvent::Started { total_steps: u64::from(height) });
    let rows_per_band = (u32::try_from(RENDER_CHUNK_POINTS).unwrap_or(u32::MAX) / width).max(1);
    let mut pixels = Vec::with_capacity(width as usize * height as usize * weights.config.out_features);
    let mut row = 0;
    while row < height {
        if !control.checkpoint() {
            return Ok(None);
        }
        let rows = rows_per_band.min(height - row);
        let mut coords = Vec::with_capacity(width as usize * rows as usize * 2);
        for j in row..row + rows {
            for i in 0..width {
                coords.push(pixel_centre(i, width));
                coords.push(pixel_centre(j, height));
            }
        }
        let values = evaluate_in_chunks(&coords, model.device(), |xs| model.evaluate(xs))?;
        pixels.extend(values.into_iter().map(|v| ((v + 1.0) * 0.5).clamp(0.0, 1.0)));
        row += rows;
        on_event(RunEvent::Progress {
            step: u64::from(row),
            metrics: Vec::new(),
            elapsed_secs: start.elapsed().as_secs_f64(),
        });
    }
    Ok(Some(ImageData::new(width, height, weights.config.out_features, pixels)?))
}
