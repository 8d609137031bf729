//! NeRF compute: hash encoding, compositing, cameras, the field's CPU twin, checkpoints, metrics.

use std::sync::Arc;

use candle_core::{Device, Tensor, Var};
use glam::{Mat4, Vec3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sparsefield::compute::image_io::ImageData;
use sparsefield::compute::metrics;
use sparsefield::compute::nerf::camera::{Camera, Ray, SceneBox};
use sparsefield::compute::nerf::field::{FieldConfig, NerfField, sh_encode_all};
use sparsefield::compute::nerf::hash_encoding::{HashEncodingOp, HashGrid, HashGridConfig};
use sparsefield::compute::nerf::sampler::{MarchSettings, OccupancyGrid, march};
use sparsefield::compute::nerf::volume::{CompositeOp, PackedSamples, composite};

fn small_grid_config() -> HashGridConfig {
    // Level 0 (res 4, 125 vertices) is dense in a 256-entry table; the finer levels are hashed.
    HashGridConfig { num_levels: 4, features_per_level: 2, log2_table_size: 8, base_resolution: 4, max_resolution: 32 }
}

/// A plain, independent reading of the instant-ngp encoding: for each level, the 8 vertices of
/// the cell around `p·N`, indexed densely while `(N+1)³` fits the table, else by the XOR hash.
fn reference_encoding(cfg: &HashGridConfig, table: &[f32], p: [f32; 3]) -> Vec<f32> {
    let t = 1usize << cfg.log2_table_size;
    let nf = cfg.features_per_level;
    let mut out = Vec::new();
    for level in 0..cfg.num_levels {
        let growth =
            (f64::from(cfg.max_resolution) / f64::from(cfg.base_resolution)).ln() / (cfg.num_levels - 1) as f64;
        let n = (f64::from(cfg.base_resolution) * (growth * level as f64).exp() + 1e-6).floor() as usize;
        let mut feats = vec![0.0_f32; nf];
        let x: Vec<f32> = p.iter().map(|v| v * n as f32).collect();
        let cell: Vec<usize> = x.iter().map(|v| (v.floor() as usize).min(n - 1)).collect();
        for dz in 0..2 {
            for dy in 0..2 {
                for dx in 0..2 {
                    let v = [cell[0] + dx, cell[1] + dy, cell[2] + dz];
                    let mut w = 1.0_f32;
                    for (axis, d) in [dx, dy, dz].into_iter().enumerate() {
                        let f = x[axis] - cell[axis] as f32;
                        w *= if d == 1 { f } else { 1.0 - f };
                    }
                    let index = if (n + 1).pow(3) <= t {
                        v[0] + (n + 1) * v[1] + (n + 1) * (n + 1) * v[2]
                    } else {
                        let h = (v[0] as u64)
                            ^ ((v[1] as u64 * 2_654_435_761) & 0xFFFF_FFFF)
                            ^ ((v[2] as u64 * 805_459_861) & 0xFFFF_FFFF);
                        (h as usize) % t
                    };
                    for (k, f) in feats.iter_mut().enumerate() {
                        *f += w * table[(level * t + index) * nf + k];
                    }
                }
            }
        }
        out.extend(feats);
    }
    out
}

/// `n` unit directions, flat `[x, y, z, …]`.
fn random_directions(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n)
        .flat_map(|_| {
            let d = Vec3::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0))
                .normalize();
            d.to_array()
        })
        .collect()
}

/// A field small enough for exhaustive comparisons.
fn small_field_config() -> FieldConfig {
    FieldConfig {
        hash: HashGridConfig {
            num_levels: 4,
            features_per_level: 2,
            log2_table_size: 10,
            base_resolution: 4,
            max_resolution: 64,
        },
        hidden_width: 16,
        num_geo_features: 7,
        colour_hidden_layers: 2,
    }
}

fn random_points(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..3 * n).map(|_| rng.random_range(0.01..0.99)).collect()
}

#[test]
fn hash_encoding_matches_a_plain_reference() {
    let cfg = small_grid_config();
    let grid = HashGrid::new(cfg);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let table: Vec<f32> = (0..cfg.num_params()).map(|_| rng.random_range(-1.0..1.0)).collect();
    let points = random_points(&mut rng, 200);
    let encoded = grid.encode(&table, &points);
    let dim = cfg.output_dim();
    for (p, e) in points.chunks_exact(3).zip(encoded.chunks_exact(dim)) {
        let reference = reference_encoding(&cfg, &table, [p[0], p[1], p[2]]);
        for (a, b) in e.iter().zip(&reference) {
            assert!((a - b).abs() < 1e-5, "encoding {a} vs reference {b} at {p:?}");
        }
    }
}

#[test]
fn hash_encoding_backward_matches_finite_differences() {
    let cfg = small_grid_config();
    let grid = Arc::new(HashGrid::new(cfg));
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let table: Vec<f32> = (0..cfg.num_params()).map(|_| rng.random_range(-1.0..1.0)).collect();
    let n = 50;
    let points = random_points(&mut rng, n);
    let coeffs: Vec<f32> = (0..n * cfg.output_dim()).map(|_| rng.random_range(-1.0..1.0)).collect();
    let device = Device::Cpu;
    let table_var = Var::from_vec(table.clone(), cfg.num_params(), &device).unwrap();
    let positions = Tensor::from_vec(points.clone(), (n, 3), &device).unwrap();
    let c = Tensor::from_vec(coeffs.clone(), (n, cfg.output_dim()), &device).unwrap();
    let enc = positions.apply_op2(table_var.as_tensor(), HashEncodingOp { grid: grid.clone() }).unwrap();
    let loss = (enc * &c).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let g = grads.get(table_var.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
    // The loss is linear in the table, so a central difference is exact up to rounding.
    let loss_at =
        |t: &[f32]| -> f64 { grid.encode(t, &points).iter().zip(&coeffs).map(|(e, c)| f64::from(e * c)).sum() };
    let touched: Vec<usize> = (0..g.len()).filter(|&i| g[i] != 0.0).collect();
    assert!(touched.len() > 100, "the points should touch many table entries, got {}", touched.len());
    for &i in touched.iter().step_by(7).take(60) {
        let h = 1e-2_f32;
        let mut plus = table.clone();
        plus[i] += h;
        let mut minus = table.clone();
        minus[i] -= h;
        let fd = (loss_at(&plus) - loss_at(&minus)) / (2.0 * f64::from(h));
        assert!((fd - f64::from(g[i])).abs() < 2e-3 * (1.0 + fd.abs()), "entry {i}: analytic {} vs fd {fd}", g[i]);
    }
    // An untouched entry has no gradient.
    let untouched = (0..g.len()).find(|i| !touched.contains(i)).unwrap();
    let mut plus = table.clone();
    plus[untouched] += 1.0;
    assert_eq!(loss_at(&plus), loss_at(&table));
}

#[test]
fn compositing_a_constant_slab_matches_beer_lambert() {
    // Density σ over a slab of length L split into 100 steps: opacity 1 − e^(−σL); a constant
    // colour c gives c·(1 − e^(−σL)); the expected depth of the slab [a, a + L] is
    // a + 1/σ − L·e^(−σL)/(1 − e^(−σL)) (continuous formula; the discretization error is O(δ)).
    let (sigma, length, a, n) = (1.7_f32, 1.3_f32, 2.0_f32, 2000);
    let delta = length / n as f32;
    let sigmas = vec![sigma; n];
    let rgbs: Vec<f32> = (0..n).flat_map(|_| [0.2, 0.5, 0.9]).collect();
    let deltas = vec![delta; n];
    let t: Vec<f32> = (0..n).map(|i| a + (i as f32 + 0.5) * delta).collect();
    let c = composite(&sigmas, &rgbs, &deltas, &t);
    let opacity = 1.0 - (-sigma * length).exp();
    assert!((c.opacity - opacity).abs() < 1e-4, "{} vs {opacity}", c.opacity);
    assert!((c.rgb[1] - 0.5 * opacity).abs() < 1e-4);
    let e = (-sigma * length).exp();
    let depth = a * opacity + (1.0 / sigma - length * e / (1.0 - e)) * opacity;
    assert!((c.depth - depth).abs() < 2e-3, "depth {} vs {depth}", c.depth);
}

#[test]
fn compositing_backward_matches_finite_differences() {
    check_compositing_backward(false);
}

#[test]
fn compositing_with_depth_backward_matches_finite_differences() {
    check_compositing_backward(true);
}

fn check_compositing_backward(with_depth: bool) {
    let columns = if with_depth { 5 } else { 4 };
    let op = |samples: &Arc<PackedSamples>| {
        if with_depth { CompositeOp::with_depth(samples.clone()) } else { CompositeOp::new(samples.clone()) }
    };
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let counts = [5usize, 0, 9, 1];
    let mut samples = PackedSamples { offsets: vec![0], ..Default::default() };
    for &c in &counts {
        for i in 0..c {
            samples.t.push(1.0 + i as f32 * 0.1);
            samples.deltas.push(rng.random_range(0.05..0.2));
            samples.positions.extend([0.0; 3]);
            samples.directions.extend([0.0, 0.0, 1.0]);
        }
        samples.offsets.push(samples.t.len());
    }
    let n = samples.num_samples();
    let samples = Arc::new(samples);
    let sigma: Vec<f32> = (0..n).map(|_| rng.random_range(0.1..8.0)).collect();
    let rgb: Vec<f32> = (0..3 * n).map(|_| rng.random_range(0.0..1.0)).collect();
    let coeffs: Vec<f32> = (0..columns * counts.len()).map(|_| rng.random_range(-1.0..1.0)).collect();
    let device = Device::Cpu;
    let forward = |s: &[f32], c: &[f32]| -> f64 {
        let out = Tensor::from_slice(s, n, &device)
            .unwrap()
            .apply_op2(&Tensor::from_slice(c, (n, 3), &device).unwrap(), op(&samples))
            .unwrap();
        assert_eq!(out.dims(), [counts.len(), columns]);
        out.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().zip(&coeffs).map(|(o, k)| f64::from(o * k)).sum()
    };
    let s_var = Var::from_vec(sigma.clone(), n, &device).unwrap();
    let c_var = Var::from_vec(rgb.clone(), (n, 3), &device).unwrap();
    let out = s_var.as_tensor().apply_op2(c_var.as_tensor(), op(&samples)).unwrap();
    let k = Tensor::from_vec(coeffs.clone(), (counts.len(), columns), &device).unwrap();
    let grads = (out * k).unwrap().sum_all().unwrap().backward().unwrap();
    let g_sigma = grads.get(s_var.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
    let g_rgb = grads.get(c_var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let h = 1e-3_f32;
    for i in 0..n {
        let (mut p, mut m) = (sigma.clone(), sigma.clone());
        p[i] += h;
        m[i] -= h;
        let fd = (forward(&p, &rgb) - forward(&m, &rgb)) / (2.0 * f64::from(h));
        assert!((fd - f64::from(g_sigma[i])).abs() < 1e-3 + 1e-2 * fd.abs(), "σ[{i}]: {} vs fd {fd}", g_sigma[i]);
    }
    for i in 0..3 * n {
        let (mut p, mut m) = (rgb.clone(), rgb.clone());
        p[i] += h;
        m[i] -= h;
        let fd = (forward(&sigma, &p) - forward(&sigma, &m)) / (2.0 * f64::from(h));
        assert!((fd - f64::from(g_rgb[i])).abs() < 1e-3 + 1e-2 * fd.abs(), "rgb[{i}]: {} vs fd {fd}", g_rgb[i]);
    }
}

#[test]
fn camera_rays_match_a_pinhole_projection() {
    // Project world points with K·[R|t]⁻¹ and check that the pixel's ray passes through them.
    let world_from_camera = Mat4::from_rotation_translation(
        glam::Quat::from_euler(glam::EulerRot::XYZ, 0.3, -0.7, 0.2),
        Vec3::new(0.5, -1.0, 3.0),
    );
    let camera = Camera { width: 64, height: 48, fx: 70.0, fy: 65.0, cx: 30.0, cy: 25.0, world_from_camera };
    let camera_from_world = world_from_camera.inverse();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for _ in 0..50 {
        let p_cam = Vec3::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0), -rng.random_range(1.0..5.0));
        let p_world = world_from_camera.transform_point3(p_cam);
        let q = camera_from_world.transform_point3(p_world);
        // OpenGL camera: x right, y up, looking down −z; image v grows downwards.
        let u = camera.cx + camera.fx * q.x / -q.z;
        let v = camera.cy - camera.fy * q.y / -q.z;
        let ray = camera.ray_through(u, v);
        let t = (p_world - ray.origin).dot(ray.direction);
        assert!((ray.at(t) - p_world).length() < 1e-4, "ray misses the point by {}", (ray.at(t) - p_world).length());
        assert!((ray.direction.length() - 1.0).abs() < 1e-5);
    }
    // Downscaling keeps the ray through the same relative image point.
    let half = camera.downscaled(2);
    let a = camera.ray_through(20.0, 10.0);
    let b = half.ray_through(10.0, 5.0);
    assert!((a.direction - b.direction).length() < 1e-5);
}

#[test]
fn scene_box_intersection_and_marching_skip_empty_cells() {
    let scene_box = SceneBox::cube(1.0);
    let ray = Ray { origin: Vec3::new(0.0, 0.0, 5.0), direction: Vec3::NEG_Z };
    assert_eq!(scene_box.intersect(&ray, 0.0), Some((4.0, 6.0)));
    let miss = Ray { origin: Vec3::new(3.0, 0.0, 5.0), direction: Vec3::NEG_Z };
    assert_eq!(scene_box.intersect(&miss, 0.0), None);
    // Only the cells with z > 0 are occupied: samples lie in [4, 5].
    let mut grid = OccupancyGrid::new(8, scene_box, 1.0);
    let cells: Vec<usize> = (0..grid.num_cells()).collect();
    for c in cells {
        let (centre, _) = grid.cell_bounds(c);
        grid.occupied[c] = centre.z > 0.0;
    }
    let settings = MarchSettings { step: 0.01, max_samples: 10_000 };
    let samples = march(&[ray, miss], &[0.5, 0.5], &grid, &settings);
    assert_eq!(samples.num_rays(), 2);
    assert_eq!(samples.range(1).len(), 0);
    assert_eq!(samples.range(0).len(), 100);
    assert!(samples.t.iter().all(|&t| (4.0..=5.0).contains(&t)));
}

#[test]
fn field_cpu_forward_matches_the_candle_field() {
    let config = small_field_config();
    let device = Device::Cpu;
    let field = NerfField::new(config, 5, &device).unwrap();
    // Larger table values than the ±1e-4 init, so that the encoding matters.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut weights = field.weights().unwrap();
    weights.table.iter_mut().for_each(|v| *v = rng.random_range(-1.0..1.0));
    field.load_weights(&weights).unwrap();
    let n = 300;
    let points = random_points(&mut rng, n);
    let dirs = random_directions(&mut rng, n);
    let (sigma, rgb) = field
        .forward(
            &Tensor::from_vec(points.clone(), (n, 3), &device).unwrap(),
            &Tensor::from_vec(sh_encode_all(&dirs), (n, 16), &device).unwrap(),
        )
        .unwrap();
    let sigma = sigma.to_vec1::<f32>().unwrap();
    let rgb = rgb.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let cpu = weights.query(&points, &dirs);
    let density_only = weights.density(&points);
    for i in 0..n {
        assert!((sigma[i] - cpu.sigma[i]).abs() <= 1e-4 * (1.0 + sigma[i]), "σ {} vs {}", sigma[i], cpu.sigma[i]);
        assert!((density_only[i] - cpu.sigma[i]).abs() <= 1e-6 * (1.0 + sigma[i]));
    }
    for (a, b) in rgb.iter().zip(&cpu.rgb) {
        assert!((a - b).abs() < 1e-5, "rgb {a} vs {b}");
    }
}

#[test]
fn spherical_harmonics_are_orthonormal() {
    // Monte Carlo over the sphere: ∫ Yᵢ Yⱼ dω = δᵢⱼ (4π × mean over uniform directions).
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let n = 200_000;
    let dirs: Vec<f32> = (0..n)
        .flat_map(|_| {
            let z: f32 = rng.random_range(-1.0..1.0);
            let phi: f32 = rng.random_range(0.0..std::f32::consts::TAU);
            let r = (1.0 - z * z).sqrt();
            [r * phi.cos(), r * phi.sin(), z]
        })
        .collect();
    let sh = sh_encode_all(&dirs);
    for i in 0..16 {
        for j in 0..16 {
            let mean: f64 = sh.chunks_exact(16).map(|y| f64::from(y[i] * y[j])).sum::<f64>() / n as f64;
            let integral = 4.0 * std::f64::consts::PI * mean;
            let expected = if i == j { 1.0 } else { 0.0 };
            assert!((integral - expected).abs() < 0.05, "⟨Y{i}, Y{j}⟩ = {integral}");
        }
    }
}

#[test]
fn ssim_matches_its_formula_on_simple_images() {
    let image = |f: &dyn Fn(u32, u32) -> f32| {
        let pixels = (0..32).flat_map(|y| (0..32).map(move |x| (x, y))).map(|(x, y)| f(x, y)).collect();
        ImageData::new(32, 32, 1, pixels).unwrap()
    };
    let a = image(&|x, y| ((x * 7 + y * 3) % 11) as f32 / 10.0);
    assert!((metrics::ssim(&a, &a) - 1.0).abs() < 1e-9);
    // Constant images: the variance terms cancel, SSIM = (2μaμb + C₁)/(μa² + μb² + C₁).
    let (p, q) = (0.3_f64, 0.6_f64);
    let c1 = 0.01_f64.powi(2);
    let expected = (2.0 * p * q + c1) / (p * p + q * q + c1);
    let s = metrics::ssim(&image(&|_, _| 0.3), &image(&|_, _| 0.6));
    assert!((s - expected).abs() < 1e-6, "{s} vs {expected}");
    // Noise lowers it.
    let noisy = image(&|x, y| {
        (((x * 7 + y * 3) % 11) as f32 / 10.0 + if (x + y) % 2 == 0 { 0.3 } else { -0.3 }).clamp(0.0, 1.0)
    });
    let s_noisy = metrics::ssim(&a, &noisy);
    assert!(s_noisy < 0.9 && s_noisy > 0.0, "{s_noisy}");
}

#[test]
fn fused_field_op_matches_the_candle_graph_in_values_and_gradients() {
    use sparsefield::compute::nerf::field_op::{FieldLayout, FieldOp, INPUT_DIM, Workspace};
    let config = small_field_config();
    let device = Device::Cpu;
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut weights = sparsefield::compute::nerf::FieldWeights::init(config, 8);
    weights.table.iter_mut().for_each(|v| *v = rng.random_range(-1.0..1.0));
    let reference = NerfField::from_weights(&weights, &device).unwrap();
    let n = 700; // several blocks, the last one partial
    let points = random_points(&mut rng, n);
    let dirs = random_directions(&mut rng, n);
    let sh = sh_encode_all(&dirs);
    let inputs: Vec<f32> = (0..n)
        .flat_map(|i| points[3 * i..3 * i + 3].iter().chain(&sh[16 * i..16 * i + 16]).copied().collect::<Vec<_>>())
        .collect();
    assert_eq!(inputs.len(), n * INPUT_DIM);
    // Loss = Σ k·(σ, rgb) with random k, through both implementations.
    let k: Vec<f32> = (0..4 * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let k = Tensor::from_vec(k, (n, 4), &device).unwrap();
    let (sigma, rgb) = reference
        .forward(&Tensor::from_vec(points, (n, 3), &device).unwrap(), &Tensor::from_vec(sh, (n, 16), &device).unwrap())
        .unwrap();
    let reference_out = Tensor::cat(&[&sigma.unsqueeze(1).unwrap(), &rgb], 1).unwrap();
    let reference_grads = (&reference_out * &k).unwrap().sum_all().unwrap().backward().unwrap();
    let mut reference_flat = Vec::new();
    let vars = reference.varmap.data().lock().unwrap();
    reference_flat.extend(
        reference_grads.get(vars.get("encoding.table").unwrap().as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
    );
    for (name, _, _) in config.layers() {
        for part in ["weight", "bias"] {
            let var = vars.get(&format!("{name}.{part}")).unwrap();
            reference_flat
                .extend(reference_grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap());
        }
    }
    drop(vars);

    let params = Var::from_vec(weights.flatten(), FieldLayout::new(&config).num_params, &device).unwrap();
    let workspace = Arc::new(std::sync::Mutex::new(Workspace::default()));
    let fused = Tensor::from_vec(inputs, (n, INPUT_DIM), &device)
        .unwrap()
        .apply_op2(params.as_tensor(), FieldOp::training(config, Arc::new(HashGrid::new(config.hash)), workspace, 1))
        .unwrap();
    let a = fused.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = reference_out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "fused {x} vs graph {y}");
    }
    let fused_grads = (&fused * &k).unwrap().sum_all().unwrap().backward().unwrap();
    let g = fused_grads.get(params.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(g.len(), reference_flat.len());
    let scale = reference_flat.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
    assert!(scale > 1e-3);
    for (i, (x, y)) in g.iter().zip(&reference_flat).enumerate() {
        assert!((x - y).abs() <= 1e-4 * scale, "gradient {i}: fused {x} vs graph {y}");
    }
}

/// The straight-line transmittance through a baked grid follows Beer–Lambert: exp(−σ·d) through a
/// slab of density σ and thickness d, 1 beside it and between points in front of it.
#[test]
fn transmittance_through_a_baked_slab_follows_beer_lambert() {
    use sparsefield::compute::nerf::bake::BakedGrid;
    let r = 64_usize;
    let (sigma, half_thickness) = (3.0_f32, 0.25_f32);
    let scene_box = SceneBox::cube(1.0);
    let mut values = vec![[0.0_f32; 4]; r * r * r];
    for z in 0..r {
        for y in 0..r {
            for x in 0..r {
                #[allow(clippy::cast_precision_loss)]
                let px = x as f32 / (r - 1) as f32 * 2.0 - 1.0;
                if px.abs() <= half_thickness {
                    values[x + r * (y + r * z)][3] = sigma;
                }
            }
        }
    }
    let grid = BakedGrid::from_values(r as u32, scene_box, values, 0.005, Vec3::ONE).unwrap();
    // Straight through the slab along x: exp(−σ·2h), up to the grid's linear ramp at the faces.
    let through = grid.transmittance_between(Vec3::new(-3.0, 0.1, 0.2), Vec3::new(3.0, 0.1, 0.2));
    let expected = (-sigma * 2.0 * half_thickness).exp();
    assert!((through - expected).abs() < 0.03, "{through} vs {expected}");
    // At 60° to the slab's normal the path is twice as long.
    let d = Vec3::new(0.5, 3f32.sqrt() / 2.0, 0.0);
    let slanted = grid.transmittance_between(-0.9 * d, 0.9 * d);
    let expected = (-sigma * 4.0 * half_thickness).exp();
    assert!((slanted - expected).abs() < 0.03, "{slanted} vs {expected}");
    // Points on the same side of the slab see each other; so does a point outside the box.
    assert_eq!(grid.transmittance_between(Vec3::new(0.5, -0.5, 0.0), Vec3::new(0.9, 0.5, 0.3)), 1.0);
    assert_eq!(grid.transmittance_between(Vec3::new(-5.0, 3.0, 0.0), Vec3::new(5.0, 3.0, 0.0)), 1.0);
    // Stopping in the middle of the slab counts half of it.
    let half = grid.transmittance_between(Vec3::new(-3.0, 0.0, 0.0), Vec3::new(0.0, 0.0, 0.0));
    let expected = (-sigma * half_thickness).exp();
    assert!((half - expected).abs() < 0.03, "{half} vs {expected}");
}
