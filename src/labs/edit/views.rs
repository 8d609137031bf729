//! What the edit lab shows: the evaluated edit (from the CPU or the compute shader), the zoom
//! view's settings and images, and their textures.

use std::sync::Arc;

use eframe::egui;
use eframe::egui_wgpu::wgpu;

use super::Subject;
use super::panel::EditViewImage;
use crate::compute::colormap;
use crate::compute::image_io::ImageData;
use crate::compute::inr::insp::OperatorWeights;
use crate::compute::inr::taylor::{self, Partials};
use crate::compute::metrics;
use crate::render::edit_gpu::EditGpu;
use crate::render::inr_view::ViewWindow;

/// Everything the views show, computed off the UI thread.
pub struct EvaluatedEdit {
    pub(super) edited: ImageData,
    pub(super) decoded: ImageData,
    pub(super) pixel: (String, ImageData),
    pub(super) reference: Option<Arc<ImageData>>,
    /// `(points, channels, P)` at the subject's pixels; reused while only the operator changes.
    pub(super) stacks: Arc<Vec<f32>>,
    pub(super) partials: Partials,
    pub(super) channels: usize,
    pub(super) key: (u64, u64),
    /// Whether the edit was asked of the GPU shader, and whether it came from there.
    pub(super) gpu_requested: bool,
    pub(super) on_gpu: bool,
    /// Why the shader could not be used, when it was asked for.
    pub(super) gpu_error: Option<String>,
}

impl EvaluatedEdit {
    /// The edit at the subject's pixels.
    pub fn edited(&self) -> &ImageData {
        &self.edited
    }

    /// Whether [`Self::edited`] was computed by the GPU shader.
    pub fn on_gpu(&self) -> bool {
        self.on_gpu
    }
}

/// Where the zoom view is computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ZoomBackend {
    /// The GPU shader on a hardware adapter; the CPU on a software one (faster there).
    #[default]
    Auto,
    Gpu,
    Cpu,
}

impl ZoomBackend {
    pub const ALL: [Self; 3] = [Self::Auto, Self::Gpu, Self::Cpu];

    pub fn description(self) -> &'static str {
        match self {
            Self::Auto => "The GPU shader on a hardware adapter, the CPU on a software one (faster there)",
            Self::Gpu => "Always the compute shader (derivative orders up to 4)",
            Self::Cpu => "Always the CPU",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Gpu => "GPU shader",
            Self::Cpu => "CPU",
        }
    }
}

/// Pan and zoom of the zoom view (not persisted).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EditZoom {
    /// INR coordinate at the view's centre.
    pub centre: [f32; 2],
    /// 1 shows the whole image.
    pub zoom: f32,
}

impl Default for EditZoom {
    fn default() -> Self {
        Self { centre: [0.0, 0.0], zoom: 2.0 }
    }
}

impl EditZoom {
    pub fn window(&self) -> ViewWindow {
        let half = 1.0 / self.zoom;
        ViewWindow {
            min: [self.centre[0] - half, self.centre[1] - half],
            max: [self.centre[0] + half, self.centre[1] + half],
        }
    }
}

/// The device the zoom view may use.
#[derive(Clone)]
pub struct EditDevice {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    /// Built on first use, off the UI thread (a first shader compile can take seconds on GL).
    pub pipelines: Arc<std::sync::OnceLock<EditGpu>>,
    /// A software rasteriser (lavapipe, llvmpipe): slower than the CPU path here.
    pub software: bool,
}

/// Side of the zoom view's grid.
pub const ZOOM_GRID: u32 = 256;

pub(super) type ZoomKey = (u64, u64, [u32; 2], u32, bool);

/// A rendered zoom view: the image, where it was computed and how long it took.
pub struct ZoomImage {
    pub(super) image: ImageData,
    pub(super) on_gpu: bool,
    pub(super) seconds: f64,
    pub(super) key: ZoomKey,
}

/// The edit, the decoded INR, the pixel-domain comparison and the derivative stack, at the
/// subject's pixels.
/// `stacks`, when given, is the subject's stack at the operator's order from an earlier evaluation.
/// With `gpu` the edit comes from the compute shader (the CPU when it fails, with the reason kept).
pub fn evaluate(
    operator: &OperatorWeights,
    subject: &Subject,
    key: (u64, u64),
    stacks: Option<Arc<Vec<f32>>>,
    gpu: Option<&EditDevice>,
) -> Result<EvaluatedEdit, String> {
    let (w, h) = (subject.input.width, subject.input.height);
    let partials = operator.spec.partials().map_err(|e| e.to_string())?;
    let stacks = match stacks {
        Some(stacks) => stacks,
        None => Arc::new(taylor::stack_at_pixels(&subject.inr, &partials, w, h).map_err(|e| e.to_string())?),
    };
    let channels = subject.inr.config.out_features;
    let image = |pixels: Vec<f32>| ImageData::new(w, h, channels, pixels).map_err(|e| e.to_string());
    let from_gpu = gpu.map(|gpu| {
        gpu.pipelines
            .get_or_init(|| EditGpu::new(&gpu.device))
            .evaluate(&gpu.device, &gpu.queue, operator, &subject.inr, ViewWindow::FULL, (w, h))
            .map(|pixels| pixels.into_iter().flat_map(|px| px.into_iter().take(channels)).collect::<Vec<f32>>())
    });
    let (edited, on_gpu, gpu_error) = match from_gpu {
        Some(Ok(pixels)) => (pixels, true, None),
        Some(Err(error)) => (operator.apply_rows(&stacks), false, Some(error)),
        None => (operator.apply_rows(&stacks), false, None),
    };
    let edited = image(edited.into_iter().map(|v| v.clamp(0.0, 1.0)).collect())?;
    let decoded = image(stacks.iter().step_by(partials.len()).map(|v| v.clamp(0.0, 1.0)).collect())?;
    // Filter sizes are in pixels of the operator's training images: scale them to this image.
    #[allow(clippy::cast_precision_loss)]
    let scale = w.max(h) as f32 / operator.spec.training_size.max(1) as f32;
    let task = operator.spec.task.at_scale(scale);
    let reference = match task.kind {
        kind if kind.is_filter() => Some(Arc::new(task.target(subject.clean.as_deref().unwrap_or(&decoded)))),
        kind if kind.restores() => subject.clean.clone(),
        _ => None,
    };
    let pixel = if task.kind.is_filter() {
        ("pixels: same filter".to_owned(), task.target(&decoded))
    } else if let Some((name, image)) = task.baselines(&decoded).into_iter().next() {
        (format!("pixels: {name}"), image)
    } else {
        ("pixels: no pixel method".to_owned(), decoded.clone())
    };
    Ok(EvaluatedEdit {
        edited,
        decoded,
        pixel,
        reference,
        stacks,
        partials,
        channels,
        key,
        gpu_requested: gpu.is_some(),
        on_gpu,
        gpu_error,
    })
}

pub(super) fn view_textures(ctx: &egui::Context, evaluated: &EvaluatedEdit) -> Vec<EditViewImage> {
    let score = |image: &ImageData| evaluated.reference.as_ref().map(|r| metrics::psnr_db(image, r));
    let mut views = vec![
        EditViewImage {
            title: "Input INR".into(),
            psnr_db: score(&evaluated.decoded),
            texture: crate::ui::widgets::image_texture(ctx, "edit input", &evaluated.decoded),
        },
        EditViewImage {
            title: if evaluated.on_gpu { "INSP edit (GPU shader)" } else { "INSP edit" }.into(),
            psnr_db: score(&evaluated.edited),
            texture: crate::ui::widgets::image_texture(ctx, "edit result", &evaluated.edited),
        },
        EditViewImage {
            title: evaluated.pixel.0.clone(),
            psnr_db: score(&evaluated.pixel.1),
            texture: crate::ui::widgets::image_texture(ctx, "edit pixels", &evaluated.pixel.1),
        },
    ];
    // |edit − reference| (or − the pixel result when no reference is known), 0.1 at the top.
    let against = evaluated.reference.as_deref().unwrap_or(&evaluated.pixel.1);
    let c = evaluated.channels;
    #[allow(clippy::cast_precision_loss)]
    let difference: Vec<f32> = evaluated
        .edited
        .pixels
        .chunks_exact(c)
        .zip(against.pixels.chunks_exact(against.channels))
        .flat_map(|(a, b)| {
            let err = a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / c as f32;
            colormap::heat(err / 0.1)
        })
        .collect();
    if let Ok(diff) = ImageData::new(evaluated.edited.width, evaluated.edited.height, 3, difference) {
        let title = if evaluated.reference.is_some() { "|edit − target|" } else { "|edit − pixels|" };
        views.push(EditViewImage {
            title: title.into(),
            psnr_db: None,
            texture: crate::ui::widgets::image_texture(ctx, "edit difference", &diff),
        });
    }
    views
}

/// Partial `k` (mean over channels) on a diverging colour map scaled to its 99th percentile.
pub(super) fn partial_texture(ctx: &egui::Context, evaluated: &EvaluatedEdit, k: usize) -> (egui::TextureHandle, f32) {
    let p = evaluated.partials.len();
    let c = evaluated.channels;
    #[allow(clippy::cast_precision_loss)]
    let values: Vec<f32> = evaluated
        .stacks
        .chunks_exact(c * p)
        .map(|point| point.iter().skip(k).step_by(p).sum::<f32>() / c as f32)
        .collect();
    let mut magnitudes: Vec<f32> = values.iter().map(|v| v.abs()).filter(|v| v.is_finite()).collect();
    let scale = if magnitudes.is_empty() {
        1.0
    } else {
        let index = (magnitudes.len() * 99 / 100).min(magnitudes.len() - 1);
        *magnitudes.select_nth_unstable_by(index, f32::total_cmp).1
    }
    .max(1e-6);
    let pixels: Vec<f32> = if k == 0 {
        values.iter().flat_map(|&v| [v.clamp(0.0, 1.0); 3]).collect()
    } else {
        values.iter().flat_map(|&v| colormap::diverging(v / scale)).collect()
    };
    let (w, h) = (evaluated.edited.width, evaluated.edited.height);
    let image = ImageData::new(w, h, 3, pixels).unwrap_or_else(|_| ImageData {
        width: 1,
        height: 1,
        channels: 3,
        pixels: vec![0.0; 3],
    });
    (crate::ui::widgets::image_texture(ctx, "edit partial", &image), scale)
}
