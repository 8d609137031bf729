//! The built-in demo scene, the Blender-like cameras around it, and the data sets rendered from
//! it or from a mesh.

use std::f32::consts::{PI, TAU};
use std::path::PathBuf;

use glam::{Quat, Vec3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::mesh::Mesh;
use super::trace::{Material, Object, Pattern, Scene, Shape, TriangleMesh};
use crate::nerf::camera::{Camera, SceneBox};
use crate::nerf::dataset::{Dataset, View};

/// Horizontal field of view of the Blender synthetic scenes (`camera_angle_x`).
pub const BLENDER_FOV_X: f32 = 0.691_111_2;
/// Distance of every camera from the origin.
pub const CAMERA_DISTANCE: f32 = 4.0;
/// Elevation of the ring of test cameras.
pub const TEST_ELEVATION_RADIANS: f32 = PI / 6.0;
/// Half side of the scene box of generated data sets.
pub const SCENE_HALF_SIZE: f32 = 1.5;
/// Random validation cameras keep `|z|` of their unit direction below this, away from the poles
/// where the up vector of `look_at` turns quickly.
const MAX_VAL_ABS_Z: f32 = 0.95;

/// What to generate: image size and the number of views per split. Memory grows as
/// `size² × views × 16` bytes, so callers bound these before passing user input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoSpec {
    /// Width and height of every view in pixels.
    pub size: u32,
    pub num_train: usize,
    pub num_val: usize,
    pub num_test: usize,
    /// Seeds the rotation of the training cameras and the validation cameras.
    pub seed: u64,
}

impl Default for DemoSpec {
    fn default() -> Self {
        Self { size: 128, num_train: 100, num_val: 10, num_test: 20, seed: 0 }
    }
}

/// The cameras of the three splits.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitCameras {
    pub train: Vec<Camera>,
    pub val: Vec<Camera>,
    pub test: Vec<Camera>,
}

/// Cameras at [`CAMERA_DISTANCE`] looking at the origin: training views on a Fibonacci sphere
/// turned by a seeded angle about +Z (its points never reach the poles), validation views
/// uniformly random on the sphere, test views evenly spaced on a ring at 30° elevation.
pub fn demo_cameras(spec: &DemoSpec) -> SplitCameras {
    let size = spec.size.max(1);
    let camera = |direction: Vec3| Camera::look_at(size, size, BLENDER_FOV_X, CAMERA_DISTANCE * direction, Vec3::ZERO);
    let from_angles = |z: f32, azimuth: f32| {
        let ring = (1.0 - z * z).max(0.0).sqrt();
        Vec3::new(ring * azimuth.cos(), ring * azimuth.sin(), z)
    };
    #[allow(clippy::cast_precision_loss)] // view counts are small
    let as_f32 = |k: usize| k as f32;

    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let turn: f32 = rng.random_range(0.0..TAU);
    let golden_angle = PI * (3.0 - 5.0_f32.sqrt());
    let num_train = as_f32(spec.num_train);
    let train = (0..spec.num_train)
        .map(|k| {
            let z = 1.0 - (2.0 * as_f32(k) + 1.0) / num_train;
            camera(from_angles(z, turn + golden_angle * as_f32(k)))
        })
        .collect();
    // Uniform z gives directions uniform on the sphere (Archimedes).
    let val = (0..spec.num_val)
        .map(|_| {
            let z = rng.random_range(-MAX_VAL_ABS_Z..MAX_VAL_ABS_Z);
            let azimuth = rng.random_range(0.0..TAU);
            camera(from_angles(z, azimuth))
        })
        .collect();
    let test = (0..spec.num_test)
        .map(|k| {
            let azimuth = TAU * as_f32(k) / as_f32(spec.num_test);
            camera(from_angles(TEST_ELEVATION_RADIANS.sin(), azimuth))
        })
        .collect();
    SplitCameras { train, val, test }
}

/// The demo scene: a checkered sphere at the origin surrounded by a striped cube, a checkered
/// torus, a cylinder, a cone and small spheres, all within radius 1.25 of the origin.
pub fn demo_scene() -> Scene {
    let red_yellow = [Vec3::new(0.85, 0.12, 0.1), Vec3::new(0.95, 0.75, 0.15)];
    let blue_white = [Vec3::new(0.12, 0.3, 0.85), Vec3::new(0.9, 0.92, 0.95)];
    let greens = [Vec3::new(0.2, 0.75, 0.3), Vec3::new(0.05, 0.35, 0.12)];
    let purples = [Vec3::new(0.55, 0.2, 0.75), Vec3::new(0.92, 0.85, 0.97)];
    let oranges = [Vec3::new(0.98, 0.55, 0.1), Vec3::new(0.45, 0.2, 0.05)];
    let cyans = [Vec3::new(0.1, 0.75, 0.8), Vec3::new(0.85, 0.98, 0.98)];
    let rotation = |axis: Vec3, angle: f32| Quat::from_axis_angle(axis.normalize(), angle);

    let (torus_positions, torus_triangles) = torus(0.36, 0.1, 72, 24);
    let (cone_positions, cone_triangles) = cone(0.24, 0.5, 48);
    let objects = vec![
        Object::new(
            Shape::Sphere { radius: 0.45 },
            Material {
                pattern: Pattern::SphereChecker { colors: red_yellow, num_longitude: 12, num_latitude: 6 },
                specular: 0.3,
            },
            Vec3::ZERO,
            rotation(Vec3::new(1.0, 1.0, 0.0), 0.4),
        ),
        Object::new(
            Shape::Cuboid { half_extents: Vec3::splat(0.22) },
            Material::matte(Pattern::Stripes {
                colors: blue_white,
                axis: Vec3::new(1.0, 0.6, 0.3).normalize(),
                period: 0.12,
            }),
            Vec3::new(0.6, -0.55, -0.25),
            rotation(Vec3::Z, 0.5) * rotation(Vec3::X, 0.3),
        ),
        Object::new(
            Shape::Mesh(Box::new(TriangleMesh::new(torus_positions, &torus_triangles, None))),
            Material::matte(Pattern::TorusChecker { colors: greens, major_radius: 0.36, num_major: 16, num_minor: 6 }),
            Vec3::new(-0.55, 0.5, 0.35),
            rotation(Vec3::new(1.0, -0.3, 0.0), 0.9),
        ),
        Object::new(
            Shape::Cylinder { radius: 0.2, half_height: 0.3 },
            Material::matte(Pattern::Cylindrical { colors: purples, num_sectors: 12, period: 0.1 }),
            Vec3::new(-0.5, -0.55, -0.3),
            rotation(Vec3::Y, 0.25),
        ),
        Object::new(
            Shape::Mesh(Box::new(TriangleMesh::new(cone_positions, &cone_triangles, None))),
            Material::matte(Pattern::Cylindrical { colors: oranges, num_sectors: 8, period: 0.12 }),
            Vec3::new(0.45, 0.6, -0.45),
            Quat::IDENTITY,
        ),
        Object::new(
            Shape::Sphere { radius: 0.14 },
            Material::matte(Pattern::Stripes { colors: cyans, axis: Vec3::Z, period: 0.07 }),
            Vec3::new(0.05, 0.1, 0.72),
            Quat::IDENTITY,
        ),
        Object::new(
            Shape::Sphere { radius: 0.12 },
            Material::matte(Pattern::Solid(Vec3::new(0.85, 0.2, 0.6))),
            Vec3::new(0.75, 0.25, 0.45),
            Quat::IDENTITY,
        ),
        Object::new(
            Shape::Sphere { radius: 0.13 },
            Material::matte(Pattern::Checker3d {
                colors: [Vec3::new(0.95, 0.95, 0.9), Vec3::new(0.25, 0.25, 0.3)],
                cell: 0.1,
            }),
            Vec3::new(0.05, -0.25, -0.8),
            Quat::IDENTITY,
        ),
    ];
    Scene::new(objects)
}

/// The lift lab's example object, built from the demo scene's pieces: the checkered sphere with
/// a cone for a hat, a cylinder for a pedestal and a small striped sphere for a nose facing +X
/// (so that front and back differ). Within radius 0.9 of the origin.
pub fn lift_example_scene() -> Scene {
    let red_yellow = [Vec3::new(0.85, 0.12, 0.1), Vec3::new(0.95, 0.75, 0.15)];
    let purples = [Vec3::new(0.55, 0.2, 0.75), Vec3::new(0.92, 0.85, 0.97)];
    let oranges = [Vec3::new(0.98, 0.55, 0.1), Vec3::new(0.45, 0.2, 0.05)];
    let cyans = [Vec3::new(0.1, 0.75, 0.8), Vec3::new(0.85, 0.98, 0.98)];
    let (cone_positions, cone_triangles) = cone(0.3, 0.45, 48);
    Scene::new(vec![
        Object::new(
            Shape::Sphere { radius: 0.5 },
            Material {
                pattern: Pattern::SphereChecker { colors: red_yellow, num_longitude: 12, num_latitude: 6 },
                specular: 0.3,
            },
            Vec3::ZERO,
            Quat::from_axis_angle(Vec3::Z, 0.2),
        ),
        Object::new(
            Shape::Mesh(Box::new(TriangleMesh::new(cone_positions, &cone_triangles, None))),
            Material::matte(Pattern::Cylindrical { colors: oranges, num_sectors: 8, period: 0.12 }),
            Vec3::new(0.0, 0.0, 0.62),
            Quat::IDENTITY,
        ),
        Object::new(
            Shape::Cylinder { radius: 0.32, half_height: 0.15 },
            Material::matte(Pattern::Cylindrical { colors: purples, num_sectors: 12, period: 0.1 }),
            Vec3::new(0.0, 0.0, -0.6),
            Quat::IDENTITY,
        ),
        Object::new(
            Shape::Sphere { radius: 0.12 },
            Material::matte(Pattern::Stripes { colors: cyans, axis: Vec3::Z, period: 0.07 }),
            Vec3::new(0.5, 0.0, 0.05),
            Quat::IDENTITY,
        ),
    ])
}

/// The demo scene rendered from [`demo_cameras`].
pub fn demo_dataset(spec: &DemoSpec) -> Dataset {
    render_dataset("demo", &demo_scene(), spec, Vec::new())
}

/// The scene of one mesh, centred on its bounding-box centre and scaled so that its bounding
/// sphere has radius 1. Vertex colours are used when present, otherwise a clay-coloured 3D
/// checker gives the views detail. Triangles that refer to missing vertices or non-finite
/// positions are dropped; the second value says how many.
pub fn mesh_scene(mesh: &Mesh) -> (Scene, usize) {
    let finite = || mesh.positions.iter().filter(|p| p.is_finite());
    let (min, max) = finite().fold((Vec3::INFINITY, Vec3::NEG_INFINITY), |(lo, hi), p| (lo.min(*p), hi.max(*p)));
    // Halves first and the radius in f64: coordinates near f32's range must not overflow.
    let center = if min.is_finite() && max.is_finite() { 0.5 * min + 0.5 * max } else { Vec3::ZERO };
    let radius = finite().map(|p| p.as_dvec3().distance(center.as_dvec3())).fold(0.0, f64::max);
    #[allow(clippy::cast_possible_truncation)]
    let scale = if radius > 0.0 && radius.is_finite() { (1.0 / radius) as f32 } else { 1.0 };
    let positions: Vec<Vec3> =
        mesh.positions.iter().map(|p| ((p.as_dvec3() - center.as_dvec3()) * f64::from(scale)).as_vec3()).collect();
    let triangle_mesh = TriangleMesh::new(positions, &mesh.triangles, mesh.colors.clone());
    let num_dropped = mesh.triangles.len() - triangle_mesh.num_triangles();
    let clay = [Vec3::new(0.85, 0.5, 0.3), Vec3::new(0.95, 0.88, 0.72)];
    let object = Object::new(
        Shape::Mesh(Box::new(triangle_mesh)),
        Material::matte(Pattern::Checker3d { colors: clay, cell: 0.2 }),
        Vec3::ZERO,
        Quat::IDENTITY,
    );
    (Scene::new(vec![object]), num_dropped)
}

/// A mesh rendered from the demo's cameras (see [`mesh_scene`]); dropped triangles are reported
/// in the data set's notices.
pub fn mesh_dataset(mesh: &Mesh, spec: &DemoSpec) -> Dataset {
    let (scene, num_dropped) = mesh_scene(mesh);
    let mut notices = Vec::new();
    if num_dropped > 0 {
        notices.push(format!(
            "{num_dropped} of {} triangles refer to missing or non-finite vertices and were left out.",
            mesh.triangles.len()
        ));
    }
    render_dataset("mesh", &scene, spec, notices)
}

fn render_dataset(name: &str, scene: &Scene, spec: &DemoSpec, notices: Vec<String>) -> Dataset {
    let cameras = demo_cameras(spec);
    let render = |cameras: &[Camera]| -> Vec<View> {
        cameras
            .par_iter()
            .map(|camera| View { camera: *camera, rgba: scene.render(camera).into(), source: PathBuf::new() })
            .collect()
    };
    let mut dataset = Dataset {
        name: name.to_owned(),
        train: render(&cameras.train),
        val: render(&cameras.val),
        test: render(&cameras.test),
        scene_box: SceneBox::cube(SCENE_HALF_SIZE),
        has_alpha: true,
        background: Vec3::ONE,
        notices,
        warnings: Vec::new(),
    };
    dataset.check_coverage();
    dataset
}

/// A torus around +Z: `num_major` segments around the axis × `num_minor` around the tube, with
/// shared vertices so that its normals are smooth.
fn torus(major_radius: f32, minor_radius: f32, num_major: u32, num_minor: u32) -> (Vec<Vec3>, Vec<[u32; 3]>) {
    #[allow(clippy::cast_precision_loss)] // segment counts are small
    let angle = |k: u32, n: u32| TAU * k as f32 / n as f32;
    let mut positions = Vec::new();
    for i in 0..num_major {
        let (sin_a, cos_a) = angle(i, num_major).sin_cos();
        for j in 0..num_minor {
            let (sin_b, cos_b) = angle(j, num_minor).sin_cos();
            let ring = major_radius + minor_radius * cos_b;
            positions.push(Vec3::new(ring * cos_a, ring * sin_a, minor_radius * sin_b));
        }
    }
    let index = |i: u32, j: u32| (i % num_major) * num_minor + j % num_minor;
    let mut triangles = Vec::new();
    for i in 0..num_major {
        for j in 0..num_minor {
            let [a, b, c, d] = [index(i, j), index(i + 1, j), index(i + 1, j + 1), index(i, j + 1)];
            triangles.extend([[a, b, c], [a, c, d]]);
        }
    }
    (positions, triangles)
}

/// A closed cone around +Z centred on its mid-height: base at `−height/2`, apex at `+height/2`.
/// The apex and the base disc have their own vertices so the crease stays sharp.
fn cone(radius: f32, height: f32, num_segments: u32) -> (Vec<Vec3>, Vec<[u32; 3]>) {
    #[allow(clippy::cast_precision_loss)] // segment counts are small
    let rim = |k: u32| {
        let (sin, cos) = (TAU * k as f32 / num_segments as f32).sin_cos();
        Vec3::new(radius * cos, radius * sin, -0.5 * height)
    };
    let n = num_segments;
    // Side rim 0..n, apexes n..2n, base rim 2n..3n, base centre 3n.
    let mut positions: Vec<Vec3> = (0..n).map(rim).collect();
    positions.extend((0..n).map(|_| Vec3::new(0.0, 0.0, 0.5 * height)));
    positions.extend((0..n).map(rim));
    positions.push(Vec3::new(0.0, 0.0, -0.5 * height));
    let mut triangles = Vec::new();
    for k in 0..n {
        let next = (k + 1) % n;
        triangles.push([k, next, n + k]);
        triangles.push([2 * n + next, 2 * n + k, 3 * n]);
    }
    (positions, triangles)
}
