//! One view of a marked field as the lab shows it: the marked render and the stage-1 render of
//! the same camera, their difference amplified, and what the decoder recovers from the marked
//! view after an (optional) attack.

use super::attacks::{Attack, AttackError};
use super::decoder::{Decoder, DecoderError, Recovery};
use crate::image_io::ImageData;
use crate::nerf::NerfSnapshot;
use crate::nerf::camera::Camera;
use crate::nerf::render::render_camera;

/// The amplification of the difference image.
pub const DIFFERENCE_GAIN: f32 = 10.0;

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Decoder(#[from] DecoderError),
    #[error(transparent)]
    Attack(#[from] AttackError),
}

/// The renders of one camera.
#[derive(Clone, Debug)]
pub struct ViewRenders {
    pub marked: ImageData,
    pub stage1: ImageData,
}

/// What the lab shows of one view.
#[derive(Clone, Debug)]
pub struct ViewRecovery {
    pub renders: ViewRenders,
    /// `|marked − stage 1| × DIFFERENCE_GAIN`, clamped.
    pub difference: ImageData,
    /// The marked view after the attack (the marked view itself without one).
    pub attacked: ImageData,
    /// What the decoder reads from `attacked`.
    pub recovery: Recovery,
    /// What it reads from the stage-1 view (after the same attack): should be nothing.
    pub clean_recovery: Recovery,
}

/// Renders `camera` with the marked field and with stage 1.
pub fn render_pair(marked: &NerfSnapshot, stage1: &NerfSnapshot, camera: &Camera) -> ViewRenders {
    let render = |s: &NerfSnapshot| render_camera(&s.weights, &s.occupancy, &s.march, camera, s.background).rgb_image();
    ViewRenders { marked: render(marked), stage1: render(stage1) }
}

/// [`render_pair`] of each camera: the marked views, and stage 1's.
pub fn render_views(
    marked: &NerfSnapshot,
    stage1: &NerfSnapshot,
    cameras: &[Camera],
) -> (Vec<ImageData>, Vec<ImageData>) {
    cameras
        .iter()
        .map(|camera| {
            let renders = render_pair(marked, stage1, camera);
            (renders.marked, renders.stage1)
        })
        .unzip()
}

/// `|a − b| × gain`, clamped to [0, 1] (same-sized images).
pub fn difference(a: &ImageData, b: &ImageData, gain: f32) -> ImageData {
    let pixels = a.pixels.iter().zip(&b.pixels).map(|(x, y)| ((x - y).abs() * gain).min(1.0)).collect();
    ImageData { pixels, ..a.clone() }
}

/// The lab's view of `renders`: the difference, and the recoveries after `attack`.
pub fn recover_view(
    renders: ViewRenders,
    decoder: &Decoder,
    attack: Option<Attack>,
    seed: u64,
) -> Result<ViewRecovery, ViewError> {
    let (attacked, attacked_clean) = match attack {
        Some(attack) => (attack.apply(&renders.marked, seed)?, attack.apply(&renders.stage1, seed ^ 1)?),
        None => (renders.marked.clone(), renders.stage1.clone()),
    };
    let mut recoveries = decoder.recover_all(&[attacked.clone(), attacked_clean])?;
    let clean_recovery = recoveries.pop().unwrap_or_else(|| unreachable!("two images in, two recoveries out"));
    let recovery = recoveries.pop().unwrap_or_else(|| unreachable!("two images in, two recoveries out"));
    Ok(ViewRecovery {
        difference: difference(&renders.marked, &renders.stage1, DIFFERENCE_GAIN),
        renders,
        attacked,
        recovery,
        clean_recovery,
    })
}
