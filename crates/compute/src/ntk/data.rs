//! The points an NTK is evaluated on, and the ±1 targets training fits: random or clustered
//! points on the sphere, the built-in digits projected to the sphere, or a CSV file.

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::kernel::Points;
use super::{MAX_POINTS, NtkError, load_points_csv};

/// Where the points come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum NtkData {
    /// `n` points uniform on the sphere in `d` dimensions; random ±1 targets.
    Random { n: usize, d: usize },
    /// `clusters` centres uniform on the sphere; each point lies at angle `spread_deg` from its
    /// centre in a random direction. Targets: +1 for even clusters, −1 for odd ones.
    Clustered { n: usize, d: usize, clusters: usize, spread_deg: f64 },
    /// The first `n` built-in 8×8 digits, centred (the mean image subtracted) and scaled to unit
    /// length: 64 dimensions. Targets: +1 for digits 0–4, −1 for 5–9.
    Digits { n: usize },
    /// One point per row of a CSV file (rows scaled to unit length); random ±1 targets.
    Csv(PathBuf),
}

impl Default for NtkData {
    fn default() -> Self {
        Self::Random { n: 200, d: 10 }
    }
}

/// Most built-in digits.
pub const DIGITS: usize = 1797;

/// Points and the targets training fits.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub points: Points,
    pub targets: Vec<f64>,
}

impl NtkData {
    /// A short description for headers and notes.
    pub fn label(&self) -> String {
        match self {
            Self::Random { n, d } => format!("{n} random points on the sphere in {d} dimensions"),
            Self::Clustered { n, d, clusters, spread_deg } => {
                format!("{n} points in {clusters} clusters of angular radius {spread_deg}° in {d} dimensions")
            }
            Self::Digits { n } => format!("{n} built-in digits, centred, on the sphere in 64 dimensions"),
            Self::Csv(path) => format!("points from {}", path.display()),
        }
    }

    /// The points (and targets) with this `seed` for random draws.
    pub fn load(&self, seed: u64) -> Result<Dataset, NtkError> {
        let check = |n: usize, d: usize| {
            if !(1..=MAX_POINTS).contains(&n) || !(1..=super::MAX_DIMENSION).contains(&d) {
                return Err(NtkError::Config(format!(
                    "the number of points must be 1 to {MAX_POINTS} and the dimension 1 to {} (got n = {n}, d = {d})",
                    super::MAX_DIMENSION
                )));
            }
            Ok(())
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x007A_26E7);
        let mut random_signs =
            |n: usize| -> Vec<f64> { (0..n).map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 }).collect() };
        match self {
            Self::Random { n, d } => {
                check(*n, *d)?;
                let points = Points::random_sphere(*n, *d, seed)?;
                Ok(Dataset { targets: random_signs(*n), points })
            }
            Self::Clustered { n, d, clusters, spread_deg } => {
                check(*n, *d)?;
                if *clusters == 0 || *clusters > *n || !(0.0..=180.0).contains(spread_deg) {
                    return Err(NtkError::Config(format!(
                        "clusters must be 1 to n and the spread 0° to 180° (got {clusters} clusters, {spread_deg}°)"
                    )));
                }
                clustered(*n, *d, *clusters, spread_deg.to_radians(), seed)
            }
            Self::Digits { n } => {
                check(*n, 64)?;
                if *n > DIGITS {
                    return Err(NtkError::Config(format!("there are {DIGITS} built-in digits (asked for {n})")));
                }
                digits(*n)
            }
            Self::Csv(path) => {
                let points = load_points_csv(path)?;
                Ok(Dataset { targets: random_signs(points.n), points })
            }
        }
    }
}

fn gaussian(rng: &mut ChaCha8Rng, d: usize) -> Vec<f64> {
    (0..d).map(|_| rng.sample::<f64, _>(StandardNormal)).collect()
}

fn clustered(n: usize, d: usize, clusters: usize, spread: f64, seed: u64) -> Result<Dataset, NtkError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let unit = |mut v: Vec<f64>| {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
        v.iter_mut().for_each(|x| *x /= norm);
        v
    };
    let centres: Vec<Vec<f64>> = (0..clusters).map(|_| unit(gaussian(&mut rng, d))).collect();
    let mut values = Vec::with_capacity(n * d);
    let mut targets = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % clusters;
        let centre = &centres[c];
        // A random direction orthogonal to the centre (in one dimension there is none: the
        // point is the centre or its antipode).
        let mut u = gaussian(&mut rng, d);
        let along: f64 = u.iter().zip(centre).map(|(a, b)| a * b).sum();
        u.iter_mut().zip(centre).for_each(|(a, b)| *a -= along * b);
        let norm = u.iter().map(|x| x * x).sum::<f64>().sqrt();
        let (cos, sin) = (spread.cos(), spread.sin());
        if norm > 1e-12 {
            values.extend(centre.iter().zip(&u).map(|(c, u)| cos * c + sin * u / norm));
        } else {
            values.extend(centre.iter().map(|c| c * cos.signum()));
        }
        targets.push(if c.is_multiple_of(2) { 1.0 } else { -1.0 });
    }
    Ok(Dataset { points: Points::normalized(n, d, values)?, targets })
}

fn digits(n: usize) -> Result<Dataset, NtkError> {
    let all = crate::inr::classify::builtin_digits();
    let images: Vec<Vec<f64>> =
        all.images.iter().take(n).map(|image| image.iter().map(|&p| f64::from(p)).collect()).collect();
    let d = images.first().map_or(0, Vec::len);
    let mut mean = vec![0.0; d];
    for image in &images {
        mean.iter_mut().zip(image).for_each(|(m, p)| *m += p);
    }
    #[allow(clippy::cast_precision_loss)]
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let values: Vec<f64> = images.iter().flat_map(|image| image.iter().zip(&mean).map(|(p, m)| p - m)).collect();
    let targets = all.labels.iter().take(n).map(|&l| if l < 5 { 1.0 } else { -1.0 }).collect();
    let points = Points::normalized(n, d, values).map_err(|e| {
        NtkError::Config(format!("the first {n} digits cannot be put on the sphere once centred ({e}); take more"))
    })?;
    Ok(Dataset { points, targets })
}
