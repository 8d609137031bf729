//! Helpers shared by the test modules.

use sparsefield::compute::image_io::{self, ImageData};
use sparsefield::render::HeadlessGpu;
use sparsefield::ui::BuiltinImage;

/// A `size × size` crop from the middle of a built-in image.
pub fn builtin_crop(builtin: BuiltinImage, size: u32) -> ImageData {
    let full = image_io::load_image_bytes(builtin.bytes(), builtin.file_name()).unwrap().image;
    let (x0, y0) = ((full.width - size) / 2, (full.height - size) / 2);
    let c = full.channels;
    let mut pixels = Vec::new();
    for y in y0..y0 + size {
        for x in x0..x0 + size {
            for ch in 0..c {
                pixels.push(full.at(x, y, ch));
            }
        }
    }
    ImageData::new(size, size, c, pixels).unwrap()
}

/// A device on whatever adapter wgpu finds (lavapipe or llvmpipe in CI). No adapter is a failure.
pub fn gpu() -> HeadlessGpu {
    let gpu = HeadlessGpu::new().unwrap_or_else(|e| panic!("GPU tests need a wgpu adapter: {e}"));
    expect_backend(&format!("{:?}", gpu.info.backend));
    gpu
}

/// `.ci/run` runs the GPU and UI tests on Vulkan (lavapipe) and again with Vulkan hidden, on
/// OpenGL, naming the backend each run must get in `SPARSEFIELD_TEST_BACKEND` (`vulkan` or `gl`),
/// so that neither run can quietly fall back to the other backend.
pub fn expect_backend(backend: &str) {
    if let Ok(expected) = std::env::var("SPARSEFIELD_TEST_BACKEND") {
        assert!(
            backend.eq_ignore_ascii_case(&expected),
            "SPARSEFIELD_TEST_BACKEND={expected}, but wgpu chose the {backend} backend; for OpenGL alone \
             hide the Vulkan drivers with VK_ICD_FILENAMES=/nonexistent.json"
        );
    }
}

/// A fresh temporary folder under the target directory.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
