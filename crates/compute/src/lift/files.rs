//! A lift's results as files: the checkpoint, `metrics.json`, `history.csv`, the reference and
//! novel-view sheets and the turntable GIF. `sparsefield lift` and the lift lab's export both
//! write through [`write_results`].

use std::collections::HashMap;
use std::path::Path;

use super::LiftError;
use super::example::{self, ExampleTruth};
use super::input::{self, LiftInput};
use super::train::{self, LiftConfig, LiftMetrics, LiftRecord};
use crate::chart;
use crate::image_io::{self, ImageData};
use crate::nerf::checkpoint;
use crate::nerf::train::NerfSnapshot;
use crate::nerf::turntable::{GifError, GifWriter, turntable};

/// Frames in the turntable GIF.
pub const TURNTABLE_FRAMES: usize = 36;

/// How the depth was made, for `metrics.json` and messages.
pub fn depth_label(input: &LiftInput) -> &'static str {
    match input.depth_origin {
        input::DepthOrigin::Inflation => "inflation",
        input::DepthOrigin::File => "file",
        input::DepthOrigin::Given => "true",
    }
}

fn write_text(path: &Path, text: String) -> Result<(), LiftError> {
    crate::files::write_atomic(path, text)
        .map_err(|e| LiftError::Write { path: path.to_owned(), reason: e.to_string() })
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), LiftError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| LiftError::Write { path: path.to_owned(), reason: e.to_string() })?;
    write_text(path, text)
}

/// Writes a lift's results into `dir`: the checkpoint (`nerf.safetensors`, `config.json`; the
/// NeRF lab and `sparsefield nerf render` read it), `metrics.json`, `history.csv`,
/// `reference.png` (photo, mask, rough depth, render, rendered depth), `views.png` (eight views
/// around; with the true views below for the example) and `turntable.gif`. `on_frame` is called
/// before each turntable frame and stops the export when it returns false.
pub fn write_results(
    dir: &Path,
    input: &LiftInput,
    cfg: &LiftConfig,
    snapshot: &NerfSnapshot,
    history: &[LiftRecord],
    truth: Option<&ExampleTruth>,
    size: u32,
    seconds: f64,
    mut on_frame: impl FnMut(usize) -> bool,
) -> Result<LiftMetrics, LiftError> {
    std::fs::create_dir_all(dir).map_err(|e| LiftError::Write { path: dir.to_owned(), reason: e.to_string() })?;
    let (metrics, render) = train::evaluate(snapshot, input, cfg, truth);
    let orbit = cfg.reference_orbit();
    let info = HashMap::from([
        ("lifted_from".to_owned(), serde_json::json!(input.name)),
        ("reference_psnr_db".to_owned(), serde_json::json!(metrics.reference_psnr_db)),
        ("mask_iou".to_owned(), serde_json::json!(metrics.mask_iou)),
    ]);
    checkpoint::save(snapshot, &orbit, dir, info)?;
    let by_azimuth = |values: &[(f32, f64)]| -> serde_json::Map<String, serde_json::Value> {
        values.iter().map(|(a, p)| (format!("{a:.0}"), serde_json::json!(p))).collect()
    };
    let novel = by_azimuth(&metrics.novel_psnr_db);
    let novel_iou = by_azimuth(&metrics.novel_silhouette_iou);
    write_json(
        &dir.join("metrics.json"),
        &serde_json::json!({
            "image": input.name,
            "width": input.width,
            "height": input.height,
            "mask": input.mask_origin.label(),
            "depth": depth_label(input),
            "prior": cfg.prior.label(),
            "ranking_loss": cfg.rank_weight > 0.0,
            "steps": snapshot.step,
            "seconds": seconds,
            "seed": cfg.seed,
            "reference_psnr_db": metrics.reference_psnr_db,
            "mask_iou": metrics.mask_iou,
            "novel_psnr_db": novel,
            "novel_mean_psnr_db_90_180": metrics.novel_mean_psnr_db(),
            "novel_silhouette_iou": novel_iou,
            "novel_mean_silhouette_iou_90_180": metrics.novel_mean_iou(),
            "config": cfg,
        }),
    )?;
    let mut csv =
        String::from("step,loss,psnr_db,mask,rank,rank_violations,symmetry,hull,entropy,samples,elapsed_secs\n");
    for r in history {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            r.step,
            r.loss,
            r.psnr_db,
            r.mask_loss,
            r.rank_loss,
            r.rank_violations,
            r.symmetry_loss,
            r.hull_loss,
            r.entropy,
            r.samples,
            r.elapsed_secs
        ));
    }
    write_text(&dir.join("history.csv"), csv)?;

    let depth_range = (train::CAMERA_DISTANCE - 1.5, train::CAMERA_DISTANCE + 1.5);
    let reference = [
        input.composited(example::BACKGROUND.to_array()),
        input.mask_image(),
        input.depth_image(),
        render.rgb_image(),
        render.depth_image(depth_range.0, depth_range.1),
    ];
    let labels = ["photo", "mask", "rough depth", "render", "depth"];
    save_labelled(&reference, &labels, &dir.join("reference.png"))?;

    let azimuths: Vec<f32> = (0..8_u8).map(|k| 45.0 * f32::from(k)).collect();
    let views: Vec<ImageData> =
        azimuths.iter().map(|&a| train::render_azimuth(snapshot, cfg, a, size, size).rgb_image()).collect();
    let view_labels: Vec<String> = azimuths.iter().map(|a| format!("{a:.0} deg")).collect();
    let mut rows = vec![(views, view_labels)];
    if let Some(truth) = truth {
        let lifted: Vec<ImageData> = truth
            .views
            .iter()
            .map(|v| train::render_azimuth(snapshot, cfg, v.azimuth_deg, size, size).rgb_image())
            .collect();
        let true_images: Vec<ImageData> = truth.views.iter().map(|v| upscale(&v.image, size)).collect();
        let mut labels: Vec<String> = truth.views.iter().map(|v| format!("lift {:.0}", v.azimuth_deg)).collect();
        labels.extend(truth.views.iter().map(|v| format!("true {:.0}", v.azimuth_deg)));
        rows.push((lifted.into_iter().chain(true_images).collect(), labels));
    }
    let row_images: Vec<ImageData> = rows
        .iter()
        .map(|(images, labels)| {
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            labelled_strip(images, &labels)
        })
        .collect();
    let sheet = stack_rows(&row_images);
    image_io::save_png(&sheet, &dir.join("views.png"))?;

    let gif_error = |e: GifError| LiftError::Write { path: e.path, reason: e.reason };
    let mut gif = GifWriter::create(&dir.join("turntable.gif"), 12).map_err(gif_error)?;
    turntable(snapshot, &orbit, TURNTABLE_FRAMES, size, &mut on_frame, |_, frame| gif.add(frame)).map_err(gif_error)?;
    gif.finish().map_err(gif_error)?;
    Ok(metrics)
}

/// Nearest-neighbour enlargement of a small image to `size` pixels on its longer side.
fn upscale(image: &ImageData, size: u32) -> ImageData {
    let factor = (size / image.width.max(image.height).max(1)).max(1);
    if factor == 1 {
        return image.clone();
    }
    let (w, h) = (image.width * factor, image.height * factor);
    let mut pixels = Vec::with_capacity((w * h) as usize * image.channels);
    for y in 0..h {
        for x in 0..w {
            for c in 0..image.channels {
                pixels.push(image.at(x / factor, y / factor, c));
            }
        }
    }
    ImageData { width: w, height: h, channels: image.channels, pixels }
}

/// Images side by side, each enlarged to at least 128 pixels and captioned underneath.
fn labelled_strip(images: &[ImageData], labels: &[&str]) -> ImageData {
    let enlarged: Vec<ImageData> = images.iter().map(|i| upscale(i, 128)).collect();
    let mut strip = train::strip(&enlarged);
    let caption = 12;
    let mut pixels = strip.pixels;
    pixels.extend(std::iter::repeat_n(1.0, (strip.width * caption) as usize * 3));
    strip = ImageData { height: strip.height + caption, pixels, ..strip };
    let mut x = 0_i64;
    let y = i64::from(strip.height - caption + 2);
    for (image, label) in enlarged.iter().zip(labels) {
        chart::draw_text(&mut strip, x + 4, y, label, [0.1, 0.1, 0.1]);
        x += i64::from(image.width);
    }
    strip
}

fn stack_rows(rows: &[ImageData]) -> ImageData {
    let width = rows.iter().map(|r| r.width).max().unwrap_or(1);
    let height: u32 = rows.iter().map(|r| r.height).sum::<u32>().max(1);
    let mut pixels = vec![1.0; (width * height) as usize * 3];
    let mut y0 = 0;
    for row in rows {
        for y in 0..row.height {
            let start = ((y0 + y) * width) as usize * 3;
            let src = (y * row.width) as usize * 3;
            pixels[start..start + row.width as usize * 3]
                .copy_from_slice(&row.pixels[src..src + row.width as usize * 3]);
        }
        y0 += row.height;
    }
    ImageData { width, height, channels: 3, pixels }
}

fn save_labelled(images: &[ImageData], labels: &[&str], path: &Path) -> Result<(), LiftError> {
    image_io::save_png(&labelled_strip(images, labels), path)?;
    Ok(())
}
