//! A small CPU ray tracer: analytic shapes and BVH-accelerated triangle meshes with procedural
//! textures, lit by an ambient term and two fixed directional lights, rendered with 2×2
//! supersampling into straight RGBA.

use glam::{Quat, Vec3};
use rayon::prelude::*;

use crate::nerf::camera::{Camera, Ray};

/// Hits closer than this to the ray origin are ignored.
pub const T_MIN: f32 = 1e-4;
/// Light that reaches every surface regardless of its orientation.
pub const AMBIENT: f32 = 0.3;
/// Blinn–Phong exponent of the specular highlight.
const SHININESS: i32 = 40;
/// Sub-pixel sample offsets (a 2×2 grid).
const SUBSAMPLES: [(f32, f32); 4] = [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)];

/// The closest surface point along a ray, in world space.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// Distance along the (unit) ray direction.
    pub t: f32,
    /// Unit normal, facing the ray's origin.
    pub normal: Vec3,
    /// Albedo in [0, 1].
    pub color: Vec3,
    /// Strength of the specular highlight (0 = matte).
    pub specular: f32,
}

/// The nearest `t` in `(t_min, t_max)` where `ray` meets the sphere, if any.
pub fn intersect_sphere(ray: &Ray, center: Vec3, radius: f32, t_min: f32, t_max: f32) -> Option<f32> {
    let (near, far) = sphere_interval(ray.origin - center, ray.direction, radius)?;
    [near, far].into_iter().find(|&t| t > t_min && t < t_max)
}

/// Entry and exit distances of the line `origin + t·direction` through a sphere at the origin.
fn sphere_interval(origin: Vec3, direction: Vec3, radius: f32) -> Option<(f32, f32)> {
    let a = direction.length_squared();
    let half_b = origin.dot(direction);
    let c = origin.length_squared() - radius * radius;
    let discriminant = half_b * half_b - a * c;
    if discriminant < 0.0 || a <= 0.0 {
        return None;
    }
    let root = discriminant.sqrt();
    Some(((-half_b - root) / a, (-half_b + root) / a))
}

/// Möller–Trumbore: `(t, u, v)` where `ray` meets triangle `abc` with `t` in `(t_min, t_max)`;
/// the hit point is `(1 − u − v)·a + u·b + v·c`.
pub fn intersect_triangle(ray: &Ray, [a, b, c]: [Vec3; 3], t_min: f32, t_max: f32) -> Option<(f32, f32, f32)> {
    triangle_hit(ray.origin, ray.direction, a, b - a, c - a, t_min, t_max)
}

#[inline]
fn triangle_hit(
    origin: Vec3,
    direction: Vec3,
    v0: Vec3,
    e1: Vec3,
    e2: Vec3,
    t_min: f32,
    t_max: f32,
) -> Option<(f32, f32, f32)> {
    // A small tolerance on the barycentrics closes cracks along shared edges.
    const EDGE: f32 = 1e-6;
    let p = direction.cross(e2);
    let det = e1.dot(p);
    if det.abs() < 1e-14 {
        return None;
    }
    let inv_det = det.recip();
    let s = origin - v0;
    let u = s.dot(p) * inv_det;
    if !(-EDGE..=1.0 + EDGE).contains(&u) {
        return None;
    }
    let q = s.cross(e1);
    let v = direction.dot(q) * inv_det;
    if v < -EDGE || u + v > 1.0 + EDGE {
        return None;
    }
    let t = e2.dot(q) * inv_det;
    (t > t_min && t < t_max).then_some((t, u, v))
}

/// 0 or 1: the parity of the sum of the cells `floor(x)`.
fn checker(coordinates: &[f32]) -> usize {
    let sum: f32 = coordinates.iter().map(|c| c.floor()).sum();
    usize::from(sum.rem_euclid(2.0) >= 1.0)
}

/// A procedural texture over an object's local coordinates (local +Z is the object's axis).
#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    Solid(Vec3),
    /// Checker in longitude × latitude around local +Z.
    SphereChecker {
        colors: [Vec3; 2],
        num_longitude: u32,
        num_latitude: u32,
    },
    /// A 3D checker of cubes of side `cell`.
    Checker3d {
        colors: [Vec3; 2],
        cell: f32,
    },
    /// Slabs of thickness `period / 2` across `axis`.
    Stripes {
        colors: [Vec3; 2],
        axis: Vec3,
        period: f32,
    },
    /// Checker in cylindrical coordinates around local +Z: `num_sectors` sectors × bands of width
    /// `period` in height and in radius (stripes on a cylinder's side, a dart board on its caps).
    Cylindrical {
        colors: [Vec3; 2],
        num_sectors: u32,
        period: f32,
    },
    /// Checker over the two angles of a torus around local +Z with the given major radius.
    TorusChecker {
        colors: [Vec3; 2],
        major_radius: f32,
        num_major: u32,
        num_minor: u32,
    },
}

impl Pattern {
    /// The albedo at local point `p`.
    pub fn color_at(&self, p: Vec3) -> Vec3 {
        use std::f32::consts::{PI, TAU};
        // Angles mapped to [0, 1).
        let turn = |y: f32, x: f32| y.atan2(x) / TAU + 0.5;
        #[allow(clippy::cast_precision_loss)] // counts are small
        let count = |n: u32| n as f32;
        match self {
            Self::Solid(c) => *c,
            Self::SphereChecker { colors, num_longitude, num_latitude } => {
                let d = p.normalize_or(Vec3::Z);
                let latitude = d.z.clamp(-1.0, 1.0).acos() / PI;
                colors[checker(&[turn(d.y, d.x) * count(*num_longitude), latitude * count(*num_latitude)])]
            }
            Self::Checker3d { colors, cell } => colors[checker(&(p / *cell).to_array())],
            Self::Stripes { colors, axis, period } => colors[checker(&[p.dot(*axis) / *period])],
            Self::Cylindrical { colors, num_sectors, period } => {
                let radius = p.truncate().length();
                colors[checker(&[turn(p.y, p.x) * count(*num_sectors), p.z / *period, radius / *period])]
            }
            Self::TorusChecker { colors, major_radius, num_major, num_minor } => {
                let minor = turn(p.z, p.truncate().length() - *major_radius);
                colors[checker(&[turn(p.y, p.x) * count(*num_major), minor * count(*num_minor)])]
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Material {
    pub pattern: Pattern,
    /// Strength of a white Blinn–Phong highlight (0 = matte).
    pub specular: f32,
}

impl Material {
    pub fn matte(pattern: Pattern) -> Self {
        Self { pattern, specular: 0.0 }
    }
}

/// A shape in its local frame (centred at the local origin, axis along local +Z).
#[derive(Clone, Debug)]
pub enum Shape {
    Sphere {
        radius: f32,
    },
    Cuboid {
        half_extents: Vec3,
    },
    /// A capped cylinder.
    Cylinder {
        radius: f32,
        half_height: f32,
    },
    Mesh(Box<TriangleMesh>),
}

/// Where a ray meets a shape, in the shape's frame.
struct ShapeHit {
    t: f32,
    normal: Vec3,
    /// The surface's own colour (a mesh's vertex colours), overriding the material's pattern.
    color: Option<Vec3>,
}

impl Shape {
    /// Radius of a sphere around the local origin that contains the shape.
    fn bounding_radius(&self) -> f32 {
        match self {
            Self::Sphere { radius } => *radius,
            Self::Cuboid { half_extents } => half_extents.length(),
            Self::Cylinder { radius, half_height } => radius.hypot(*half_height),
            Self::Mesh(mesh) => mesh.positions.iter().map(|p| p.length()).fold(0.0, f32::max),
        }
    }

    fn intersect(&self, origin: Vec3, direction: Vec3, t_max: f32) -> Option<ShapeHit> {
        match self {
            Self::Sphere { radius } => {
                let (near, far) = sphere_interval(origin, direction, *radius)?;
                let t = [near, far].into_iter().find(|&t| t > T_MIN && t < t_max)?;
                Some(ShapeHit { t, normal: (origin + t * direction) / *radius, color: None })
            }
            Self::Cuboid { half_extents } => intersect_cuboid(origin, direction, *half_extents, t_max),
            Self::Cylinder { radius, half_height } => {
                intersect_cylinder(origin, direction, *radius, *half_height, t_max)
            }
            Self::Mesh(mesh) => mesh.hit(origin, direction, t_max),
        }
    }
}

fn intersect_cuboid(origin: Vec3, direction: Vec3, half_extents: Vec3, t_max: f32) -> Option<ShapeHit> {
    let inv = direction.recip();
    let t0 = (-half_extents - origin) * inv;
    let t1 = (half_extents - origin) * inv;
    let (near, far) = (t0.min(t1), t0.max(t1));
    let (t_near, t_far) = (near.max_element(), far.min_element());
    if t_near > t_far {
        return None;
    }
    // From outside the box the entry face is hit, from inside the exit face.
    let (t, faces) = if t_near > T_MIN { (t_near, near) } else { (t_far, far) };
    if t <= T_MIN || t >= t_max {
        return None;
    }
    let axis = if faces.x == t {
        0
    } else if faces.y == t {
        1
    } else {
        2
    };
    let mut normal = Vec3::ZERO;
    normal[axis] = -direction[axis].signum();
    Some(ShapeHit { t, normal, color: None })
}

fn intersect_cylinder(origin: Vec3, direction: Vec3, radius: f32, half_height: f32, t_max: f32) -> Option<ShapeHit> {
    let mut best: Option<ShapeHit> = None;
    let mut consider = |t: f32, normal: Vec3| {
        if t > T_MIN && t < best.as_ref().map_or(t_max, |b| b.t) {
            best = Some(ShapeHit { t, normal, color: None });
        }
    };
    // The side: a 2D circle intersection, limited in height.
    let (o2, d2) = (origin.truncate(), direction.truncate());
    if let Some((near, far)) = sphere_interval(o2.extend(0.0), d2.extend(0.0), radius) {
        for t in [near, far] {
            let p = origin + t * direction;
            if p.z.abs() <= half_height {
                consider(t, (p.truncate() / radius).extend(0.0));
            }
        }
    }
    // The caps.
    if direction.z != 0.0 {
        for z in [-half_height, half_height] {
            let t = (z - origin.z) / direction.z;
            if (origin + t * direction).truncate().length_squared() <= radius * radius {
                consider(t, Vec3::new(0.0, 0.0, z.signum()));
            }
        }
    }
    best
}

/// A shape with a material, placed in the world by a rotation about its centre and a translation.
#[derive(Clone, Debug)]
pub struct Object {
    pub shape: Shape,
    pub material: Material,
    pub position: Vec3,
    pub rotation: Quat,
    bounding_radius: f32,
}

impl Object {
    pub fn new(shape: Shape, material: Material, position: Vec3, rotation: Quat) -> Self {
        let bounding_radius = shape.bounding_radius();
        Self { shape, material, position, rotation: rotation.normalize(), bounding_radius }
    }

    /// Radius of a sphere around `position` that contains the object.
    pub fn bounding_radius(&self) -> f32 {
        self.bounding_radius
    }

    /// The closest hit nearer than `t_max`, with the normal facing the ray.
    pub fn intersect(&self, ray: &Ray, t_max: f32) -> Option<Hit> {
        // Most rays miss most objects: a bounding-sphere test first.
        let (near, far) = sphere_interval(ray.origin - self.position, ray.direction, self.bounding_radius)?;
        if far <= T_MIN || near >= t_max {
            return None;
        }
        let local_from_world = self.rotation.inverse();
        let origin = local_from_world * (ray.origin - self.position);
        let direction = local_from_world * ray.direction;
        let hit = self.shape.intersect(origin, direction, t_max)?;
        let color = hit.color.unwrap_or_else(|| self.material.pattern.color_at(origin + hit.t * direction));
        let mut normal = (self.rotation * hit.normal).normalize_or(-ray.direction);
        if normal.dot(ray.direction) > 0.0 {
            normal = -normal;
        }
        Some(Hit { t: hit.t, normal, color, specular: self.material.specular })
    }
}

/// A directional light: `direction` points from the surface towards the light.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Light {
    pub direction: Vec3,
    pub intensity: f32,
}

/// Objects under fixed lights; rays that miss everything see a transparent background.
#[derive(Clone, Debug)]
pub struct Scene {
    pub objects: Vec<Object>,
    pub lights: [Light; 2],
    pub ambient: f32,
}

impl Scene {
    /// The scene with the standard lights: a key light from above and a dimmer fill from below
    /// the opposite side, so that views from underneath carry shading too.
    pub fn new(objects: Vec<Object>) -> Self {
        let lights = [
            Light { direction: Vec3::new(0.45, -0.35, 0.82).normalize(), intensity: 0.75 },
            Light { direction: Vec3::new(-0.55, 0.6, -0.35).normalize(), intensity: 0.35 },
        ];
        Self { objects, lights, ambient: AMBIENT }
    }

    /// The closest hit along `ray`.
    pub fn intersect(&self, ray: &Ray) -> Option<Hit> {
        let mut best: Option<Hit> = None;
        for object in &self.objects {
            if let Some(hit) = object.intersect(ray, best.map_or(f32::INFINITY, |b| b.t)) {
                best = Some(hit);
            }
        }
        best
    }

    /// The colour seen along `ray` at `hit`: ambient + Lambert per light + an optional highlight.
    pub fn shade(&self, ray: &Ray, hit: &Hit) -> Vec3 {
        let mut diffuse = self.ambient;
        let mut specular = 0.0;
        for light in &self.lights {
            let lambert = hit.normal.dot(light.direction);
            if lambert <= 0.0 {
                continue;
            }
            diffuse += light.intensity * lambert;
            if hit.specular > 0.0 {
                let half = (light.direction - ray.direction).normalize_or_zero();
                specular += light.intensity * hit.specular * hit.normal.dot(half).max(0.0).powi(SHININESS);
            }
        }
        (hit.color * diffuse + Vec3::splat(specular)).clamp(Vec3::ZERO, Vec3::ONE)
    }

    /// The straight RGBA image seen by `camera`, row-major from the top-left: alpha is the
    /// fraction of the 2×2 sub-samples that hit a surface, colour their mean.
    pub fn render(&self, camera: &Camera) -> Vec<[f32; 4]> {
        let width = camera.width as usize;
        let mut pixels = vec![[0.0; 4]; camera.num_pixels()];
        if width == 0 {
            return pixels;
        }
        pixels.par_chunks_mut(width).zip(0..camera.height).for_each(|(row, j)| {
            for (pixel, i) in row.iter_mut().zip(0..camera.width) {
                *pixel = self.pixel(camera, i, j);
            }
        });
        pixels
    }

    fn pixel(&self, camera: &Camera, i: u32, j: u32) -> [f32; 4] {
        #[allow(clippy::cast_precision_loss)] // image sides are far below 2²⁴
        let (u, v) = (i as f32, j as f32);
        let mut sum = Vec3::ZERO;
        let mut num_hits = 0_u8;
        for (du, dv) in SUBSAMPLES {
            let ray = camera.ray_through(u + du, v + dv);
            if let Some(hit) = self.intersect(&ray) {
                sum += self.shade(&ray, &hit);
                num_hits += 1;
            }
        }
        if num_hits == 0 {
            return [0.0; 4];
        }
        let n = f32::from(num_hits);
        let color = sum / n;
        [color.x, color.y, color.z, n / 4.0]
    }
}

// ---------------------------------------------------------------------------------------------
// Triangle meshes and their bounding-volume hierarchy

/// Where a ray meets a triangle mesh.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeshHit {
    pub t: f32,
    /// Index into the mesh's triangles.
    pub triangle: usize,
    /// Barycentric weights of the triangle's second and third vertex.
    pub u: f32,
    pub v: f32,
}

/// A triangle mesh ready for ray tracing: smooth vertex normals and a BVH.
#[derive(Clone, Debug)]
pub struct TriangleMesh {
    positions: Vec<Vec3>,
    triangles: Vec<[u32; 3]>,
    normals: Vec<Vec3>,
    colors: Option<Vec<Vec3>>,
    bvh: Bvh,
}

impl TriangleMesh {
    /// Triangles that refer to missing vertices or non-finite positions are dropped (compare
    /// [`Self::num_triangles`]); colours are used only if there is one per position.
    pub fn new(positions: Vec<Vec3>, triangles: &[[u32; 3]], colors: Option<Vec<Vec3>>) -> Self {
        let usable =
            |&[a, b, c]: &[u32; 3]| [a, b, c].iter().all(|&k| positions.get(k as usize).is_some_and(|p| p.is_finite()));
        let triangles: Vec<[u32; 3]> = triangles.iter().copied().filter(usable).collect();
        let colors = colors.filter(|c| c.len() == positions.len());
        // Area-weighted face normals summed per vertex.
        let mut normals = vec![Vec3::ZERO; positions.len()];
        for &[a, b, c] in &triangles {
            let [pa, pb, pc] = [a, b, c].map(|k| positions[k as usize]);
            let face = (pb - pa).cross(pc - pa);
            for k in [a, b, c] {
                normals[k as usize] += face;
            }
        }
        for n in &mut normals {
            *n = n.normalize_or_zero();
        }
        let bvh = Bvh::build(&positions, &triangles);
        Self { positions, triangles, normals, colors, bvh }
    }

    pub fn num_triangles(&self) -> usize {
        self.triangles.len()
    }

    pub fn positions(&self) -> &[Vec3] {
        &self.positions
    }

    pub fn triangles(&self) -> &[[u32; 3]] {
        &self.triangles
    }

    /// The closest triangle hit with `t` in `(t_min, t_max)`.
    pub fn intersect(&self, ray: &Ray, t_min: f32, t_max: f32) -> Option<MeshHit> {
        self.bvh.intersect(ray.origin, ray.direction, t_min, t_max)
    }

    fn hit(&self, origin: Vec3, direction: Vec3, t_max: f32) -> Option<ShapeHit> {
        let hit = self.bvh.intersect(origin, direction, T_MIN, t_max)?;
        let [a, b, c] = self.triangles[hit.triangle].map(|k| k as usize);
        let weights = Vec3::new(1.0 - hit.u - hit.v, hit.u, hit.v);
        let face =
            (self.positions[b] - self.positions[a]).cross(self.positions[c] - self.positions[a]).normalize_or_zero();
        // Smooth across gentle bends only: a corner whose vertex normal is far from the face
        // normal (a crease, or inconsistent winding) uses the face normal.
        let corner = |k: usize| {
            let n = self.normals[k];
            if n.dot(face) > 0.7 { n } else { face }
        };
        let normal = (weights.x * corner(a) + weights.y * corner(b) + weights.z * corner(c)).normalize_or(face);
        let color =
            self.colors.as_ref().map(|colors| weights.x * colors[a] + weights.y * colors[b] + weights.z * colors[c]);
        Some(ShapeHit { t: hit.t, normal, color })
    }
}

/// Triangles per leaf above which a node is always split (when its centroids can be separated).
const MAX_LEAF_SIZE: usize = 4;
/// Deeper trees are cut off so that the fixed traversal stack cannot overflow.
const MAX_DEPTH: usize = 48;
const TRAVERSAL_STACK: usize = 64;
const NUM_BINS: usize = 12;

#[derive(Clone, Copy, Debug)]
struct Node {
    min: Vec3,
    max: Vec3,
    /// A leaf's first triangle, or an inner node's left child (the right one follows it).
    first: u32,
    /// Number of triangles of a leaf; 0 for inner nodes.
    count: u32,
}

/// A triangle stored for the intersection test, in BVH order.
#[derive(Clone, Copy, Debug)]
struct PackedTriangle {
    v0: Vec3,
    e1: Vec3,
    e2: Vec3,
    /// Index into the mesh's triangles.
    index: u32,
}

/// A bounding-volume hierarchy over triangles, built with binned SAH.
#[derive(Clone, Debug, Default)]
struct Bvh {
    nodes: Vec<Node>,
    triangles: Vec<PackedTriangle>,
}

/// Half the surface area of a box (the SAH only compares areas).
fn half_area(min: Vec3, max: Vec3) -> f32 {
    let d = (max - min).max(Vec3::ZERO);
    d.x * d.y + d.y * d.z + d.z * d.x
}

impl Bvh {
    // Triangle counts fit in u32 (checked at the top), and SAH costs need no exact counts.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    fn build(positions: &[Vec3], triangles: &[[u32; 3]]) -> Self {
        // Triangle indices are u32 throughout; a mesh with more triangles would not fit in memory anyway.
        let num = triangles.len().min(u32::MAX as usize);
        if num == 0 {
            return Self::default();
        }
        let boxes: Vec<(Vec3, Vec3)> = triangles[..num]
            .iter()
            .map(|t| {
                let [a, b, c] = t.map(|k| positions[k as usize]);
                (a.min(b).min(c), a.max(b).max(c))
            })
            .collect();
        let centroids: Vec<Vec3> = boxes.iter().map(|(lo, hi)| 0.5 * (*lo + *hi)).collect();
        let mut order: Vec<u32> = (0..u32::try_from(num).unwrap_or(u32::MAX)).collect();
        let mut nodes = vec![Node { min: Vec3::ZERO, max: Vec3::ZERO, first: 0, count: order.len() as u32 }];
        let mut stack = vec![(0_usize, 0_usize)];
        while let Some((node_index, depth)) = stack.pop() {
            let Node { first, count, .. } = nodes[node_index];
            let (first, count) = (first as usize, count as usize);
            let items = &mut order[first..first + count];
            let (mut min, mut max) = (Vec3::INFINITY, Vec3::NEG_INFINITY);
            let (mut c_min, mut c_max) = (Vec3::INFINITY, Vec3::NEG_INFINITY);
            for &k in items.iter() {
                let (lo, hi) = boxes[k as usize];
                (min, max) = (min.min(lo), max.max(hi));
                let c = centroids[k as usize];
                (c_min, c_max) = (c_min.min(c), c_max.max(c));
            }
            nodes[node_index].min = min;
            nodes[node_index].max = max;
            if count <= 2 || depth >= MAX_DEPTH {
                continue;
            }
            let mid = match best_split(items, &boxes, &centroids, c_min, c_max) {
                Some(split) => {
                    let leaf_cost = count as f32 * half_area(min, max);
                    if count <= MAX_LEAF_SIZE && split.cost >= leaf_cost {
                        continue;
                    }
                    // Partition in place: triangles whose centroid falls in a bin left of the split first.
                    let mut mid = 0;
                    for k in 0..items.len() {
                        if split.bin_of(centroids[items[k] as usize]) < split.bin {
                            items.swap(k, mid);
                            mid += 1;
                        }
                    }
                    mid
                }
                // All centroids coincide (e.g. duplicated faces): halve a large leaf anyway, so
                // that no leaf holds more than a few triangles.
                None if count > MAX_LEAF_SIZE => count / 2,
                None => continue,
            };
            if mid == 0 || mid == count {
                continue;
            }
            let left = nodes.len();
            let (first_u32, mid_u32) = (first as u32, mid as u32);
            nodes.push(Node { min, max, first: first_u32, count: mid_u32 });
            nodes.push(Node { min, max, first: first_u32 + mid_u32, count: count as u32 - mid_u32 });
            nodes[node_index].first = left as u32;
            nodes[node_index].count = 0;
            stack.push((left, depth + 1));
            stack.push((left + 1, depth + 1));
        }
        let triangles = order
            .iter()
            .map(|&k| {
                let [a, b, c] = triangles[k as usize].map(|i| positions[i as usize]);
                PackedTriangle { v0: a, e1: b - a, e2: c - a, index: k }
            })
            .collect();
        Self { nodes, triangles }
    }

    fn intersect(&self, origin: Vec3, direction: Vec3, t_min: f32, t_max: f32) -> Option<MeshHit> {
        let inv = direction.recip();
        let enter = |node: &Node, t_max: f32| {
            let t0 = (node.min - origin) * inv;
            let t1 = (node.max - origin) * inv;
            let near = t0.min(t1).max_element().max(t_min);
            let far = t0.max(t1).min_element().min(t_max);
            (near <= far).then_some(near)
        };
        let root = self.nodes.first()?;
        enter(root, t_max)?;
        let mut best: Option<MeshHit> = None;
        let mut t_max = t_max;
        let mut stack = [(0_usize, 0.0_f32); TRAVERSAL_STACK];
        let mut stack_len = 0;
        let mut current = 0_usize;
        loop {
            let node = &self.nodes[current];
            if node.count > 0 {
                let first = node.first as usize;
                for triangle in &self.triangles[first..first + node.count as usize] {
                    if let Some((t, u, v)) =
                        triangle_hit(origin, direction, triangle.v0, triangle.e1, triangle.e2, t_min, t_max)
                    {
                        t_max = t;
                        best = Some(MeshHit { t, triangle: triangle.index as usize, u, v });
                    }
                }
            } else {
                let left = node.first as usize;
                let right = left + 1;
                match (enter(&self.nodes[left], t_max), enter(&self.nodes[right], t_max)) {
                    (Some(t_left), Some(t_right)) => {
                        let (near, far, t_far) =
                            if t_left <= t_right { (left, right, t_right) } else { (right, left, t_left) };
                        if let Some(slot) = stack.get_mut(stack_len) {
                            *slot = (far, t_far);
                            stack_len += 1;
                        }
                        current = near;
                        continue;
                    }
                    (Some(_), None) => {
                        current = left;
                        continue;
                    }
                    (None, Some(_)) => {
                        current = right;
                        continue;
                    }
                    (None, None) => {}
                }
            }
            // Pop the next node that may still hold a closer hit.
            loop {
                if stack_len == 0 {
                    return best;
                }
                stack_len -= 1;
                let (node, t_enter) = stack[stack_len];
                if t_enter <= t_max {
                    current = node;
                    break;
                }
            }
        }
    }
}

/// The chosen split of a node: centroids in bins `< bin` go left.
struct Split {
    axis: usize,
    bin: usize,
    origin: f32,
    scale: f32,
    cost: f32,
}

impl Split {
    fn bin_of(&self, centroid: Vec3) -> usize {
        let x = (centroid[self.axis] - self.origin) * self.scale;
        // `x` is finite and non-negative up to rounding; the clamp keeps the cast in range.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let bin = x.clamp(0.0, (NUM_BINS - 1) as f32) as usize;
        bin
    }
}

// SAH costs need no exact counts.
#[allow(clippy::cast_precision_loss)]
fn best_split(items: &[u32], boxes: &[(Vec3, Vec3)], centroids: &[Vec3], c_min: Vec3, c_max: Vec3) -> Option<Split> {
    let mut best: Option<Split> = None;
    for axis in 0..3 {
        let extent = c_max[axis] - c_min[axis];
        if extent <= 1e-12 || !extent.is_finite() {
            continue;
        }
        let mut split =
            Split { axis, bin: 0, origin: c_min[axis], scale: NUM_BINS as f32 / extent, cost: f32::INFINITY };
        let mut counts = [0_usize; NUM_BINS];
        let mut bounds = [(Vec3::INFINITY, Vec3::NEG_INFINITY); NUM_BINS];
        for &k in items {
            let b = split.bin_of(centroids[k as usize]);
            let (lo, hi) = boxes[k as usize];
            counts[b] += 1;
            bounds[b] = (bounds[b].0.min(lo), bounds[b].1.max(hi));
        }
        // Costs of the left sides of splits 1..NUM_BINS, then sweep from the right.
        let mut left_cost = [0.0_f32; NUM_BINS];
        let (mut lo, mut hi, mut n) = (Vec3::INFINITY, Vec3::NEG_INFINITY, 0_usize);
        for b in 0..NUM_BINS - 1 {
            (lo, hi, n) = (lo.min(bounds[b].0), hi.max(bounds[b].1), n + counts[b]);
            left_cost[b + 1] = n as f32 * half_area(lo, hi);
        }
        let (mut lo, mut hi, mut n) = (Vec3::INFINITY, Vec3::NEG_INFINITY, 0_usize);
        for b in (1..NUM_BINS).rev() {
            (lo, hi, n) = (lo.min(bounds[b].0), hi.max(bounds[b].1), n + counts[b]);
            let cost = left_cost[b] + n as f32 * half_area(lo, hi);
            if n > 0 && n < items.len() && cost < split.cost {
                (split.bin, split.cost) = (b, cost);
            }
        }
        if split.bin > 0 && best.as_ref().is_none_or(|s| split.cost < s.cost) {
            best = Some(split);
        }
    }
    best
}
