//! Small dense helpers on row-major `f64` buffers, over faer's matrix product.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// `dst = a · bᵀ` for row-major `a` (`ra × k`) and `b` (`rb × k`); `dst` is `ra × rb` row-major.
pub fn a_bt(dst: &mut [f64], a: &[f64], b: &[f64], (ra, rb, k): (usize, usize, usize), par: Par) {
    // Row-major a (ra × k) is column-major aᵀ (k × ra); row-major dst is column-major dstᵀ = b · aᵀ.
    let at = MatRef::from_column_major_slice(a, k, ra);
    let bt = MatRef::from_column_major_slice(b, k, rb);
    let dst = MatMut::from_column_major_slice_mut(dst, rb, ra);
    matmul(dst, Accum::Replace, bt.transpose(), at, 1.0, par);
    after_product(par);
}

/// `dst = a · b` for row-major `a` (`ra × k`) and `b` (`k × cb`); `dst` is `ra × cb` row-major.
pub fn a_b(dst: &mut [f64], a: &[f64], b: &[f64], (ra, k, cb): (usize, usize, usize), par: Par) {
    let at = MatRef::from_column_major_slice(a, k, ra);
    let bt = MatRef::from_column_major_slice(b, cb, k);
    // dstᵀ (cb × ra) = bᵀ · aᵀ.
    let dst = MatMut::from_column_major_slice_mut(dst, cb, ra);
    matmul(dst, Accum::Replace, bt, at, 1.0, par);
    after_product(par);
}

/// Copies the lower triangle of the `n × n` row-major `m` onto its upper triangle.
pub fn mirror_lower(m: &mut [f64], n: usize) {
    for i in 0..n {
        for j in i + 1..n {
            m[i * n + j] = m[j * n + i];
        }
    }
}

/// `dst = aᵀ · b` for row-major `a` (`k × ra`) and `b` (`k × cb`); `dst` is `ra × cb` row-major.
pub fn at_b(dst: &mut [f64], a: &[f64], b: &[f64], (k, ra, cb): (usize, usize, usize), par: Par) {
    // Row-major a (k × ra) is column-major aᵀ (ra × k); dstᵀ (cb × ra) = bᵀ · a.
    let at = MatRef::from_column_major_slice(a, ra, k);
    let bt = MatRef::from_column_major_slice(b, cb, k);
    let dst = MatMut::from_column_major_slice_mut(dst, cb, ra);
    matmul(dst, Accum::Replace, bt, at.transpose(), 1.0, par);
    after_product(par);
}

/// Clears the upper halves of the vector registers (`vzeroupper`) on this thread. Some of the
/// hand-written matrix kernels underneath faer return with them dirty, and on x86 CPUs with
/// AVX-512 every later SSE-encoded instruction (libm's `exp`, `erfc`, …) then pays a large
/// penalty: scalar code after a product ran up to 25 times slower. Call it before long scalar
/// loops that follow matrix products.
pub fn clear_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx")]
        fn zero_upper() {
            core::arch::x86_64::_mm256_zeroupper();
        }
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU supports AVX (checked just above); vzeroupper touches no memory.
            #[allow(unsafe_code)]
            unsafe {
                zero_upper();
            }
        }
    }
}

/// Clears the vector state on the calling thread after a product (rayon workers that ran part
/// of it clear theirs where it matters, e.g. with `for_each_init`).
fn after_product(_par: Par) {
    clear_upper_vector_state();
}
