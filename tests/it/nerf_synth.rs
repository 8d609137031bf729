//! Synthetic NeRF data: the demo scene, mesh loaders and the CPU ray tracer.
//!
//! Intersection distances are checked against closed forms worked out in the comments; the mesh
//! fixtures are small hand-written files whose vertices and faces are known.

use std::path::{Path, PathBuf};

use glam::{Quat, Vec3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sparsefield::compute::nerf::synth::{
    BLENDER_FOV_X, CAMERA_DISTANCE, DemoSpec, Material, Mesh, MeshError, Object, Pattern, Scene, Shape, TriangleMesh,
    demo_cameras, demo_dataset, demo_scene, intersect_sphere, intersect_triangle, load_mesh, mesh_dataset,
};
use sparsefield::compute::nerf::{Camera, Dataset, Ray, SceneBox, View};

use super::common::temp_dir;

fn ray(origin: [f32; 3], direction: [f32; 3]) -> Ray {
    Ray { origin: Vec3::from(origin), direction: Vec3::from(direction).normalize() }
}

fn assert_close(actual: f32, expected: f32, tolerance: f32, what: &str) {
    assert!((actual - expected).abs() <= tolerance, "{what}: got {actual}, expected {expected}");
}

fn small_spec() -> DemoSpec {
    DemoSpec { size: 24, num_train: 5, num_val: 3, num_test: 4, seed: 7 }
}

fn all_views(dataset: &Dataset) -> impl Iterator<Item = &View> {
    dataset.train.iter().chain(&dataset.val).chain(&dataset.test)
}

// ---------------------------------------------------------------------------------------------
// Intersections

#[test]
fn ray_meets_sphere_at_analytic_distances() {
    let (center, radius) = (Vec3::ZERO, 1.0);
    // Head-on from z = −5: the near surface is at z = −1, 4 units away.
    let t = intersect_sphere(&ray([0.0, 0.0, -5.0], [0.0, 0.0, 1.0]), center, radius, 1e-4, f32::INFINITY);
    assert_close(t.unwrap(), 4.0, 1e-5, "head-on");
    // Offset by 0.6: the chord's half length is √(1 − 0.36) = 0.8, so t = 5 − 0.8.
    let t = intersect_sphere(&ray([0.6, 0.0, -5.0], [0.0, 0.0, 1.0]), center, radius, 1e-4, f32::INFINITY);
    assert_close(t.unwrap(), 4.2, 1e-5, "offset");
    // From the centre the exit is one radius away.
    let t = intersect_sphere(&ray([0.0, 0.0, 0.0], [1.0, 1.0, 0.0]), center, radius, 1e-4, f32::INFINITY);
    assert_close(t.unwrap(), 1.0, 1e-5, "from inside");
    // A shifted sphere, diagonal ray: centre (1, 2, 3), radius 0.5, ray along (1, 1, 1)/√3 from
    // (1, 2, 3) − 4·(1, 1, 1)/√3 meets it at t = 3.5.
    let d = Vec3::ONE.normalize();
    let r = Ray { origin: Vec3::new(1.0, 2.0, 3.0) - 4.0 * d, direction: d };
    assert_close(intersect_sphere(&r, Vec3::new(1.0, 2.0, 3.0), 0.5, 1e-4, 10.0).unwrap(), 3.5, 1e-5, "shifted");
    assert_eq!(intersect_sphere(&ray([1.1, 0.0, -5.0], [0.0, 0.0, 1.0]), center, radius, 1e-4, 10.0), None);
    assert_eq!(intersect_sphere(&ray([0.0, 0.0, -5.0], [0.0, 0.0, -1.0]), center, radius, 1e-4, 10.0), None);
    assert_eq!(intersect_sphere(&ray([0.0, 0.0, -5.0], [0.0, 0.0, 1.0]), center, radius, 1e-4, 3.9), None);
}

#[test]
fn ray_meets_triangle_with_expected_barycentrics() {
    let triangle = [Vec3::ZERO, Vec3::X, Vec3::Y];
    // Straight down onto (0.25, 0.5, 0): 1 unit away; the point is 0.25·b + 0.5·c.
    let (t, u, v) = intersect_triangle(&ray([0.25, 0.5, 1.0], [0.0, 0.0, -1.0]), triangle, 1e-4, 10.0).unwrap();
    assert_close(t, 1.0, 1e-6, "t");
    assert_close(u, 0.25, 1e-6, "u");
    assert_close(v, 0.5, 1e-6, "v");
    // Slanted along (1, 0, −1)/√2 from (0, 0.2, 0.5): lands on (0.5, 0.2, 0) after 0.5·√2.
    let (t, u, v) = intersect_triangle(&ray([0.0, 0.2, 0.5], [1.0, 0.0, -1.0]), triangle, 1e-4, 10.0).unwrap();
    assert_close(t, 0.5 * 2.0_f32.sqrt(), 1e-6, "slanted t");
    assert_close(u, 0.5, 1e-6, "slanted u");
    assert_close(v, 0.2, 1e-6, "slanted v");
    // Outside the hypotenuse, parallel to the plane, behind the origin.
    assert_eq!(intersect_triangle(&ray([0.6, 0.6, 1.0], [0.0, 0.0, -1.0]), triangle, 1e-4, 10.0), None);
    assert_eq!(intersect_triangle(&ray([0.2, 0.2, 1.0], [1.0, 0.0, 0.0]), triangle, 1e-4, 10.0), None);
    assert_eq!(intersect_triangle(&ray([0.2, 0.2, 1.0], [0.0, 0.0, 1.0]), triangle, 1e-4, 10.0), None);
}

#[test]
fn boxes_and_cylinders_are_hit_on_the_expected_faces() {
    let matte = || Material::matte(Pattern::Solid(Vec3::splat(0.5)));
    let cuboid = Object::new(
        Shape::Cuboid { half_extents: Vec3::new(0.5, 0.25, 1.0) },
        matte(),
        Vec3::new(0.0, 0.0, 1.0),
        Quat::IDENTITY,
    );
    // From +X the face x = 0.5 is 4.5 away.
    let hit = cuboid.intersect(&ray([5.0, 0.0, 1.0], [-1.0, 0.0, 0.0]), f32::INFINITY).unwrap();
    assert_close(hit.t, 4.5, 1e-5, "box t");
    assert!(hit.normal.abs_diff_eq(Vec3::X, 1e-6), "box normal {}", hit.normal);
    // Rotated 90° about Z the long side faces +X: y-extent 0.25 is now along x.
    let turned = Object::new(
        Shape::Cuboid { half_extents: Vec3::new(0.5, 0.25, 1.0) },
        matte(),
        Vec3::ZERO,
        Quat::from_rotation_z(std::f32::consts::FRAC_PI_2),
    );
    let hit = turned.intersect(&ray([5.0, 0.0, 0.0], [-1.0, 0.0, 0.0]), f32::INFINITY).unwrap();
    assert_close(hit.t, 4.75, 1e-5, "rotated box t");

    let cylinder = Object::new(Shape::Cylinder { radius: 0.3, half_height: 0.6 }, matte(), Vec3::ZERO, Quat::IDENTITY);
    let side = cylinder.intersect(&ray([0.0, -4.0, 0.2], [0.0, 1.0, 0.0]), f32::INFINITY).unwrap();
    assert_close(side.t, 3.7, 1e-5, "cylinder side");
    assert!(side.normal.abs_diff_eq(-Vec3::Y, 1e-5), "side normal {}", side.normal);
    let cap = cylinder.intersect(&ray([0.1, 0.0, 3.0], [0.0, 0.0, -1.0]), f32::INFINITY).unwrap();
    assert_close(cap.t, 2.4, 1e-5, "cylinder cap");
    assert!(cap.normal.abs_diff_eq(Vec3::Z, 1e-5), "cap normal {}", cap.normal);
    assert!(cylinder.intersect(&ray([0.31, -4.0, 0.0], [0.0, 1.0, 0.0]), f32::INFINITY).is_none());
    assert!(cylinder.intersect(&ray([0.0, -4.0, 0.61], [0.0, 1.0, 0.0]), f32::INFINITY).is_none());
}

#[test]
fn bvh_finds_the_same_hits_as_testing_every_triangle() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let point = |rng: &mut ChaCha8Rng| Vec3::new(rng.random(), rng.random(), rng.random()) * 2.0 - 1.0;
    let mut positions = Vec::new();
    let mut triangles = Vec::new();
    for k in 0..600_u32 {
        let corner = point(&mut rng);
        positions.extend([corner, corner + 0.2 * point(&mut rng), corner + 0.2 * point(&mut rng)]);
        triangles.push([3 * k, 3 * k + 1, 3 * k + 2]);
    }
    let mesh = TriangleMesh::new(positions.clone(), &triangles, None);
    assert_eq!(mesh.num_triangles(), 600);
    let mut num_hits = 0;
    for _ in 0..3000 {
        let origin = 3.0 * point(&mut rng).normalize();
        let target = 0.8 * point(&mut rng);
        let r = Ray { origin, direction: (target - origin).normalize() };
        let brute = triangles
            .iter()
            .enumerate()
            .filter_map(|(k, t)| {
                intersect_triangle(&r, t.map(|i| positions[i as usize]), 1e-4, f32::INFINITY).map(|hit| (k, hit.0))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let bvh = mesh.intersect(&r, 1e-4, f32::INFINITY);
        match (brute, bvh) {
            (None, None) => {}
            (Some((k, t)), Some(hit)) => {
                num_hits += 1;
                assert_close(hit.t, t, 1e-5, "closest t");
                assert_eq!(hit.triangle, k, "closest triangle");
            }
            other => panic!("brute force and BVH disagree: {other:?}"),
        }
    }
    assert!(num_hits > 500, "too few rays hit anything ({num_hits}); the test would prove little");
}

// ---------------------------------------------------------------------------------------------
// The demo scene

#[test]
fn demo_views_have_requested_counts_and_cameras_on_the_sphere() {
    let spec = small_spec();
    let dataset = demo_dataset(&spec);
    assert_eq!(dataset.name, "demo");
    assert_eq!((dataset.train.len(), dataset.val.len(), dataset.test.len()), (5, 3, 4));
    assert_eq!(dataset.scene_box, SceneBox::cube(1.5));
    assert!(dataset.has_alpha);
    assert_eq!(dataset.background, Vec3::ONE);
    assert!(dataset.notices.is_empty());
    // Blender's focal length: 0.5·w / tan(θ/2).
    let focal = 0.5 * 24.0 / (0.5 * BLENDER_FOV_X).tan();
    for view in all_views(&dataset) {
        let camera = view.camera;
        assert_eq!((camera.width, camera.height), (24, 24));
        assert_eq!(view.rgba.len(), 24 * 24);
        assert!(view.source.as_os_str().is_empty());
        assert_close(camera.fx, focal, 1e-3, "focal length");
        assert_close(camera.position().length(), CAMERA_DISTANCE, 1e-5, "camera distance");
        let forward = camera.rotation() * Vec3::NEG_Z;
        let to_origin = -camera.position().normalize();
        assert!(forward.abs_diff_eq(to_origin, 1e-5), "camera looks along {forward}, not at the origin");
        assert!(camera.position().normalize().z.abs() < 0.999, "a camera sits on a pole");
        for px in view.rgba.iter() {
            assert!(px.iter().all(|v| (0.0..=1.0).contains(v)), "pixel {px:?} outside [0, 1]");
        }
    }
    // Test cameras: 30° elevation (z = 4·sin 30° = 2), 90° apart in azimuth.
    for (k, view) in dataset.test.iter().enumerate() {
        let p = view.camera.position();
        assert_close(p.z, 2.0, 1e-4, "test elevation");
        let azimuth = p.y.atan2(p.x).rem_euclid(std::f32::consts::TAU);
        assert_close(azimuth, k as f32 * std::f32::consts::FRAC_PI_2, 1e-4, "test azimuth");
    }
}

#[test]
fn training_cameras_cover_both_hemispheres() {
    let cameras = demo_cameras(&DemoSpec { num_train: 100, ..DemoSpec::default() }).train;
    let above = cameras.iter().filter(|c| c.position().z > 0.0).count();
    assert!((45..=55).contains(&above), "{above} of 100 training cameras above the equator");
    let highest = cameras.iter().map(|c| c.position().z).fold(f32::MIN, f32::max);
    let lowest = cameras.iter().map(|c| c.position().z).fold(f32::MAX, f32::min);
    assert!(highest > 3.8 && lowest < -3.8, "training cameras span z in [{lowest}, {highest}]");
    // No two training cameras coincide.
    for (i, a) in cameras.iter().enumerate() {
        for b in &cameras[i + 1..] {
            assert!(a.position().distance(b.position()) > 0.3, "two training cameras nearly coincide");
        }
    }
}

#[test]
fn demo_is_deterministic_for_a_seed() {
    let spec = small_spec();
    let (a, b) = (demo_dataset(&spec), demo_dataset(&spec));
    for (x, y) in all_views(&a).zip(all_views(&b)) {
        assert_eq!(x.camera, y.camera);
        assert_eq!(x.rgba, y.rgba);
    }
    let other = demo_cameras(&DemoSpec { seed: 8, ..spec });
    let same = demo_cameras(&spec);
    assert_ne!(other.train, same.train, "the seed must turn the training cameras");
    assert_ne!(other.val, same.val, "the seed must move the validation cameras");
    assert_eq!(other.test, same.test, "test cameras are a fixed ring");
}

/// A coarse colour name of a lit albedo (lighting scales all channels alike).
fn colour_family(rgb: Vec3) -> &'static str {
    let (max, min) = (rgb.max_element(), rgb.min_element());
    if max - min < 0.12 * max.max(1e-3) {
        return "grey";
    }
    let hue = if max == rgb.x {
        ((rgb.y - rgb.z) / (max - min)).rem_euclid(6.0)
    } else if max == rgb.y {
        (rgb.z - rgb.x) / (max - min) + 2.0
    } else {
        (rgb.x - rgb.y) / (max - min) + 4.0
    } * 60.0;
    match hue {
        h if h < 25.0 => "red",
        h if h < 45.0 => "orange",
        h if h < 75.0 => "yellow",
        h if h < 160.0 => "green",
        h if h < 200.0 => "cyan",
        h if h < 260.0 => "blue",
        h if h < 330.0 => "purple",
        _ => "red",
    }
}

#[test]
fn demo_views_have_background_coverage_and_many_colours() {
    let dataset = demo_dataset(&small_spec());
    let mut families = std::collections::BTreeSet::new();
    for view in all_views(&dataset) {
        let covered = view.rgba.iter().filter(|p| p[3] > 0.999).count();
        let empty = view.rgba.iter().filter(|p| p[3] == 0.0).count();
        let partial = view.rgba.len() - covered - empty;
        assert!(covered > 40, "only {covered} covered pixels");
        assert!(empty > 40, "only {empty} empty pixels");
        assert!(partial > 0, "no anti-aliased edge pixels");
        for px in view.rgba.iter().filter(|p| p[3] > 0.999) {
            families.insert(colour_family(Vec3::new(px[0], px[1], px[2])));
        }
        assert!(view.rgba.iter().filter(|p| p[3] == 0.0).all(|p| p[..3] == [0.0; 3]));
    }
    assert!(families.len() >= 6, "colour families seen: {families:?}");
}

#[test]
fn demo_objects_fit_in_the_scene_box() {
    let scene = demo_scene();
    assert!(scene.objects.len() >= 6);
    for object in &scene.objects {
        let reach = object.position.length() + object.bounding_radius();
        assert!(reach <= 1.3, "an object reaches {reach} from the origin");
    }
}

/// The centre pixel of a 25×25 camera at `eye` looking at the origin.
fn centre_pixel(scene: &Scene, eye: Vec3) -> [f32; 4] {
    let camera = Camera::look_at(25, 25, BLENDER_FOV_X, eye, Vec3::ZERO);
    scene.render(&camera)[12 * 25 + 12]
}

#[test]
fn centre_pixel_shows_the_object_in_front() {
    let scene = demo_scene();
    // From +X the line of sight meets the red–yellow sphere of radius 0.45 at the origin first.
    let eye = Vec3::new(4.0, 0.0, 0.0);
    let hit = scene.intersect(&Ray { origin: eye, direction: -Vec3::X }).unwrap();
    assert_close(hit.t, 4.0 - 0.45, 1e-4, "distance to the central sphere");
    let [r, g, b, a] = centre_pixel(&scene, eye);
    assert_eq!(a, 1.0);
    let family = colour_family(Vec3::new(r, g, b));
    assert!(["red", "orange", "yellow"].contains(&family), "centre pixel {r} {g} {b} is {family}");
    assert!(r > b + 0.3, "the central sphere is red or yellow, got {r} {g} {b}");

    // Looking past the blue–white striped cube at (0.6, −0.55, −0.25) towards the origin.
    let eye = 4.0 * Vec3::new(0.6, -0.55, -0.25).normalize();
    let [r, g, b, a] = centre_pixel(&scene, eye);
    assert_eq!(a, 1.0);
    assert!(b >= r && b >= g, "the cube is blue or white, got {r} {g} {b}");
}

#[test]
fn straight_colour_is_the_mean_of_covered_samples() {
    // A white sphere whose silhouette crosses pixels: partly covered pixels must keep the full
    // colour of the surface (straight alpha), not a colour darkened by the background.
    let white = Object::new(
        Shape::Sphere { radius: 1.0 },
        Material::matte(Pattern::Solid(Vec3::ONE)),
        Vec3::ZERO,
        Quat::IDENTITY,
    );
    let mut scene = Scene::new(vec![white]);
    scene.ambient = 1.0; // Fully lit everywhere: every covered sample is exactly white.
    let camera = Camera::look_at(16, 16, BLENDER_FOV_X, Vec3::new(0.0, -4.0, 0.0), Vec3::ZERO);
    let rgba = scene.render(&camera);
    let partial: Vec<_> = rgba.iter().filter(|p| p[3] > 0.0 && p[3] < 1.0).collect();
    assert!(!partial.is_empty(), "no edge pixels");
    for px in partial {
        assert!(px[..3].iter().all(|&c| c == 1.0), "edge pixel {px:?} is not straight white");
        assert!([0.25, 0.5, 0.75].contains(&px[3]), "alpha {} is not a 2×2 coverage", px[3]);
    }
}

// ---------------------------------------------------------------------------------------------
// Mesh loaders

/// The tetrahedron every fixture describes: four corners, four faces.
const TETRA_POSITIONS: [[f32; 3]; 4] = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
const TETRA_TRIANGLES: [[u32; 3]; 4] = [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]];

fn positions(mesh: &Mesh) -> Vec<[f32; 3]> {
    mesh.positions.iter().map(Vec3::to_array).collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn obj_reads_all_face_forms_and_relative_indices() {
    let dir = temp_dir("synth_obj");
    let text = "# a tetrahedron\nmtllib x.mtl\no tetra\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nvt 0 0\nvn 0 0 1\n\
                s off\nf 1 3 2\nf 1/1 2/1 4/1\nf 1//1 4//1 3//1\nf -3/1/1 -2/1/1 -1/1/1\n";
    let mesh = load_mesh(&write(&dir, "tetra.obj", text.as_bytes())).unwrap();
    assert_eq!(positions(&mesh), TETRA_POSITIONS);
    assert_eq!(mesh.triangles, TETRA_TRIANGLES);
    assert_eq!(mesh.colors, None);

    // A coloured quad, fan-triangulated; colours in 0–255 are rescaled.
    let text = "v 0 0 0 255 0 0\nv 1 0 0 0 255 0\nv 1 1 0 0 0 255\nv 0 1 0 255 255 255\nf 1 2 3 4\n";
    let mesh = load_mesh(&write(&dir, "QUAD.OBJ", text.as_bytes())).unwrap();
    assert_eq!(mesh.triangles, [[0, 1, 2], [0, 2, 3]]);
    let colors = mesh.colors.unwrap();
    assert_eq!(colors, [Vec3::X, Vec3::Y, Vec3::Z, Vec3::ONE]);
}

#[test]
fn off_and_coff_read_vertices_faces_and_colours() {
    let dir = temp_dir("synth_off");
    let text = "OFF\n# comment\n4 4 6\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 2 1\n3 0 1 3\n3 0 3 2\n3 1 2 3 255 0 0\n";
    let mesh = load_mesh(&write(&dir, "tetra.off", text.as_bytes())).unwrap();
    assert_eq!(positions(&mesh), TETRA_POSITIONS);
    assert_eq!(mesh.triangles, TETRA_TRIANGLES);
    assert_eq!(mesh.colors, None);

    let text = "COFF 4 1 0\n0 0 0 1 0 0 1\n1 0 0 0 1 0 1\n1 1 0 0 0 1 1\n0 1 0 0.5 0.5 0.5 1\n4 0 1 2 3\n";
    let mesh = load_mesh(&write(&dir, "quad.off", text.as_bytes())).unwrap();
    assert_eq!(mesh.triangles, [[0, 1, 2], [0, 2, 3]]);
    assert_eq!(mesh.colors.unwrap(), [Vec3::X, Vec3::Y, Vec3::Z, Vec3::splat(0.5)]);
}

#[test]
fn ascii_ply_skips_unknown_properties_and_elements() {
    let dir = temp_dir("synth_ply_ascii");
    let text = "ply\nformat ascii 1.0\ncomment made by hand\nelement vertex 4\nproperty float x\nproperty float y\n\
                property float z\nproperty float nx\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n\
                element face 3\nproperty uchar flags\nproperty list uchar int vertex_indices\n\
                property list uchar float texcoord\nelement edge 1\nproperty int a\nproperty int b\nend_header\n\
                0 0 0 9 255 0 0\n1 0 0 9 0 255 0\n0 1 0 9 0 0 255\n0 0 1 9 255 255 255\n\
                7 3 0 2 1 2 0.5 0.5\n7 3 0 1 3 0\n7 4 0 3 2 1 0\n0 1\n";
    let mesh = load_mesh(&write(&dir, "tetra.ply", text.as_bytes())).unwrap();
    assert_eq!(positions(&mesh), TETRA_POSITIONS);
    // The quad 0 3 2 1 fans into (0 3 2) and (0 2 1).
    assert_eq!(mesh.triangles, [[0, 2, 1], [0, 1, 3], [0, 3, 2], [0, 2, 1]]);
    assert_eq!(mesh.colors.unwrap(), [Vec3::X, Vec3::Y, Vec3::Z, Vec3::ONE]);
}

/// A binary PLY of the tetrahedron: double positions, an extra float, uchar colours, an int
/// index list with a uchar count, and a trailing element to skip.
fn binary_ply(little_endian: bool) -> Vec<u8> {
    let format = if little_endian { "binary_little_endian" } else { "binary_big_endian" };
    let mut bytes = format!(
        "ply\nformat {format} 1.0\nelement vertex 4\nproperty double x\nproperty double y\nproperty double z\n\
         property float quality\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n\
         element face 4\nproperty list uchar int vertex_indices\nelement extra 2\nproperty short s\nend_header\n"
    )
    .into_bytes();
    let put = |chunk: &[u8], bytes: &mut Vec<u8>| {
        let mut chunk = chunk.to_vec();
        if !little_endian {
            chunk.reverse();
        }
        bytes.extend(chunk);
    };
    for (k, p) in TETRA_POSITIONS.iter().enumerate() {
        for c in p {
            put(&f64::from(*c).to_le_bytes(), &mut bytes);
        }
        put(&1.5_f32.to_le_bytes(), &mut bytes);
        bytes.extend([(k * 60) as u8, 0, 255]);
    }
    for t in TETRA_TRIANGLES {
        bytes.push(3);
        for i in t {
            put(&(i as i32).to_le_bytes(), &mut bytes);
        }
    }
    for s in [7_i16, -7] {
        put(&s.to_le_bytes(), &mut bytes);
    }
    bytes
}

#[test]
fn binary_ply_reads_both_byte_orders() {
    let dir = temp_dir("synth_ply_binary");
    for little_endian in [true, false] {
        let mesh = load_mesh(&write(&dir, "tetra.ply", &binary_ply(little_endian))).unwrap();
        assert_eq!(positions(&mesh), TETRA_POSITIONS, "little endian: {little_endian}");
        assert_eq!(mesh.triangles, TETRA_TRIANGLES, "little endian: {little_endian}");
        let colors = mesh.colors.unwrap();
        assert_eq!(colors[2], Vec3::new(120.0 / 255.0, 0.0, 1.0));
    }
}

/// Loads `bytes` as `name` and returns the error message, which must name the file.
fn refusal(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = write(dir, name, bytes);
    let message = match load_mesh(&path) {
        Ok(mesh) => panic!("{name} was accepted: {mesh:?}"),
        Err(e) => e.to_string(),
    };
    assert!(message.contains(name), "the message does not name the file: {message}");
    message
}

#[test]
fn malformed_meshes_are_refused_with_the_file_and_place() {
    let dir = temp_dir("synth_refusals");
    let cases: &[(&str, &[u8], &str)] = &[
        ("tetra.stl", b"solid x", ".obj, .ply or .off"),
        ("number.obj", b"v 0 0 0\nv 1 zero 0\nv 0 1 0\nf 1 2 3\n", "line 2"),
        ("nan.obj", b"v 0 0 0\nv 1 0 0\nv 0 nan 0\nf 1 2 3\n", "line 3"),
        ("inf.obj", b"v 0 0 0\nv 1 0 1e39\nv 0 1 0\nf 1 2 3\n", "not finite"),
        ("range.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", "line 4"),
        ("zero.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", "start at 1"),
        ("relative.obj", b"v 0 0 0\nv 1 0 0\nf -1 -2 -3\n", "line 3"),
        ("points.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\n", "no faces"),
        ("onepoint.obj", b"v 1 1 1\nv 1 1 1\nv 1 1 1\nf 1 2 3\nf 3 2 1\n", "none of its 2 faces has an area"),
        ("line.off", b"OFF\n3 1 0\n0 0 0\n1 1 1\n2 2 2\n3 0 1 2\n", "no surface"),
        ("short.obj", b"v 0 0 0\nv 1 0 0\nf 1 2\n", "line 3"),
        ("bad.off", b"PLY\n3 1 0\n", "line 1"),
        ("huge.off", b"OFF\n99999999999 1 0\n0 0 0\n", "corrupt"),
        ("cut.off", b"OFF\n3 1 0\n0 0 0\n1 0 0\n# padding, so that the counts fit the file size\n", "truncated"),
        ("range.off", b"OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n", "line 6"),
        ("nan.off", b"OFF\n3 1 0\n0 0 0\n1 0 inf\n0 1 0\n3 0 1 2\n", "line 4"),
        ("noend.ply", b"ply\nformat ascii 1.0\nelement vertex 3\n", "end_header"),
        ("notply.ply", b"OFF\nend_header\n", "line 1"),
        (
            "huge.ply",
            b"ply\nformat binary_little_endian 1.0\nelement vertex 4000000000\nproperty float x\nproperty float y\n\
              property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n\0\0\0\0",
            "corrupt",
        ),
        (
            "range.ply",
            b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n\
              element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n",
            "line 13",
        ),
        (
            "nan.ply",
            b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n\
              element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\nNaN 0 0\n0 1 0\n3 0 1 2\n",
            "line 11",
        ),
        (
            "noface.ply",
            b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\n\
              end_header\n0 0 0\n",
            "face",
        ),
    ];
    for (name, bytes, place) in cases {
        let message = refusal(&dir, name, bytes);
        assert!(message.contains(place), "{name}: expected {place:?} in {message:?}");
    }

    // Binary data cut short, in the faces: the message names the face.
    let full = binary_ply(true);
    let message = refusal(&dir, "cut.ply", &full[..full.len() - 10]);
    assert!(message.contains("face 3") && message.contains("truncated"), "{message}");
    // A binary index past the vertices.
    let mut bad = binary_ply(false);
    let last_face_index = bad.len() - 4 - 4;
    bad[last_face_index..last_face_index + 4].copy_from_slice(&9_i32.to_be_bytes());
    let message = refusal(&dir, "index.ply", &bad);
    assert!(message.contains("face 3") && message.contains("vertex index 9"), "{message}");

    let missing = dir.join("missing.obj");
    let error = load_mesh(&missing).unwrap_err();
    assert!(matches!(error, MeshError::NotFound { .. }), "{error}");
    assert!(error.to_string().contains("missing.obj"));
}

// ---------------------------------------------------------------------------------------------
// Mesh data sets

/// A unit cube of 8 shared corners and 12 triangles.
fn cube(colors: Option<Vec<Vec3>>) -> Mesh {
    let positions = (0..8).map(|k| Vec3::new((k & 1) as f32, ((k >> 1) & 1) as f32, ((k >> 2) & 1) as f32)).collect();
    let quads = [[0, 2, 3, 1], [4, 5, 7, 6], [0, 1, 5, 4], [2, 6, 7, 3], [0, 4, 6, 2], [1, 3, 7, 5]];
    let triangles = quads.iter().flat_map(|[a, b, c, d]| [[*a, *b, *c], [*a, *c, *d]]).collect();
    Mesh { positions, triangles, colors }
}

#[test]
fn rendered_mesh_covers_the_image_centre_in_every_view() {
    let spec = small_spec();
    let green = cube(Some(vec![Vec3::new(0.1, 0.8, 0.2); 8]));
    let dataset = mesh_dataset(&green, &spec);
    assert_eq!(dataset.name, "mesh");
    assert!(dataset.notices.is_empty());
    assert_eq!((dataset.train.len(), dataset.val.len(), dataset.test.len()), (5, 3, 4));
    for view in all_views(&dataset) {
        // The four pixels around the centre of the 24×24 image.
        for k in [11 * 24 + 11, 11 * 24 + 12, 12 * 24 + 11, 12 * 24 + 12] {
            let [r, g, b, a] = view.rgba[k];
            assert_eq!(a, 1.0, "the cube does not cover the centre");
            assert_eq!(colour_family(Vec3::new(r, g, b)), "green", "vertex colours lost: {r} {g} {b}");
        }
        // The cube's bounding sphere has radius 1 after scaling; at 4 units a 24-pixel image
        // shows ±1.44 units, so the corners of the image stay empty.
        assert_eq!(view.rgba[0][3], 0.0);
    }

    // Without colours the clay checker gives the views more than one colour.
    let plain = mesh_dataset(&cube(None), &spec);
    let view = &plain.train[0];
    let mut distinct: Vec<[u32; 3]> = Vec::new();
    for px in view.rgba.iter().filter(|p| p[3] == 1.0) {
        let key = [px[0], px[1], px[2]].map(|c| (c * 20.0) as u32);
        if !distinct.contains(&key) {
            distinct.push(key);
        }
    }
    assert!(distinct.len() >= 4, "an untextured mesh view shows only {} colours", distinct.len());
}

#[test]
fn broken_triangles_of_a_hand_built_mesh_are_reported() {
    let mut mesh = cube(None);
    mesh.triangles.push([0, 1, 99]);
    let dataset = mesh_dataset(&mesh, &DemoSpec { size: 8, num_train: 1, num_val: 0, num_test: 0, seed: 0 });
    assert_eq!(dataset.notices.len(), 1, "{:?}", dataset.notices);
    assert!(dataset.notices[0].contains("1 of 13"), "{}", dataset.notices[0]);
}

#[test]
fn a_mesh_of_identical_triangles_still_splits_and_hits() {
    use sparsefield::compute::nerf::camera::Ray;
    use sparsefield::compute::nerf::synth::TriangleMesh;
    let positions =
        vec![glam::Vec3::new(-1.0, -1.0, 0.0), glam::Vec3::new(1.0, -1.0, 0.0), glam::Vec3::new(0.0, 1.0, 0.0)];
    let triangles = vec![[0_u32, 1, 2]; 5000];
    let mesh = TriangleMesh::new(positions, &triangles, None);
    assert_eq!(mesh.num_triangles(), 5000);
    let ray = Ray { origin: glam::Vec3::new(0.0, 0.0, 2.0), direction: glam::Vec3::NEG_Z };
    let hit = mesh.intersect(&ray, 0.0, f32::INFINITY).expect("the ray hits the triangle");
    assert!((hit.t - 2.0).abs() < 1e-5);
}
