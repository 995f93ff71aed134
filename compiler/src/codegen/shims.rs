//! The functions compiled code calls: each does exactly what the reference interpreter does
//! for the same operation (the same `libm` and `ppl_runtime` functions, the same summation
//! order), so the two back ends agree bit for bit. Everything crosses as plain numbers and
//! pointers into the caller's scratch memory, whose sizes compiled code has checked.

use ppl_runtime::{Rng, SingleOut};

use crate::interp::{real_binary, real_unary};
use crate::ir::{BinaryOp, UnaryOp};

/// The address compiled code passes to [`apply_unary`] for `op`: the interpreter's own
/// function for it, so no table is consulted per call.
pub fn unary_address(op: UnaryOp) -> Option<i64> {
    real_unary(op).map(|f| f as usize as i64)
}

pub fn binary_address(op: BinaryOp) -> Option<i64> {
    real_binary(op).map(|f| f as usize as i64)
}

/// # Safety (for every function below)
/// Pointers point into the caller's scratch memory with at least the lengths given; compiled
/// code computes them from the function's static shapes. `f` is an address from
/// [`unary_address`] or [`binary_address`].
pub unsafe extern "C" fn apply_unary(f: i64, x: f64) -> f64 {
    // SAFETY: `f` came from `unary_address`, a `fn(f64) -> f64`.
    let f = unsafe { std::mem::transmute::<usize, fn(f64) -> f64>(f as usize) };
    f(x)
}

pub unsafe extern "C" fn apply_binary(f: i64, a: f64, b: f64) -> f64 {
    // SAFETY: `f` came from `binary_address`, a `fn(f64, f64) -> f64`.
    let f = unsafe { std::mem::transmute::<usize, fn(f64, f64) -> f64>(f as usize) };
    f(a, b)
}

unsafe fn slice<'a>(ptr: *const f64, len: i64) -> &'a [f64] {
    // SAFETY: see the module's contract.
    unsafe { std::slice::from_raw_parts(ptr, len as usize) }
}

unsafe fn slice_mut<'a>(ptr: *mut f64, len: i64) -> &'a mut [f64] {
    // SAFETY: see the module's contract.
    unsafe { std::slice::from_raw_parts_mut(ptr, len as usize) }
}

pub unsafe extern "C" fn vec_unary(f: i64, dst: *mut f64, src: *const f64, len: i64) {
    // SAFETY: `f` came from `unary_address`, a `fn(f64) -> f64`.
    let f = unsafe { std::mem::transmute::<usize, fn(f64) -> f64>(f as usize) };
    // SAFETY: see the module's contract.
    let (dst, src) = unsafe { (slice_mut(dst, len), slice(src, len)) };
    for (d, s) in dst.iter_mut().zip(src) {
        *d = f(*s);
    }
}

/// `dst = −src` (`code` 0) or `|src|` (1) elementwise: the sign bit flipped or cleared, as the
/// interpreter's `-x` and `libm::fabs` do, in a loop the compiler vectorises instead of a call
/// per element.
pub unsafe extern "C" fn vec_sign(code: i64, dst: *mut f64, src: *const f64, len: i64) {
    // SAFETY: see the module's contract; each element is read before the same index is written
    // (the second operand, of stride 0, is never used).
    unsafe {
        match code {
            0 => elementwise(|x, _| -x, dst, (src, 1), (src, 0), len),
            _ => elementwise(|x, _| x.abs(), dst, (src, 1), (src, 0), len),
        }
    }
}

/// `dst = a op b` elementwise, where a scalar operand has stride 0.
pub unsafe extern "C" fn vec_binary(
    f: i64,
    dst: *mut f64,
    a: *const f64,
    a_stride: i64,
    b: *const f64,
    b_stride: i64,
    len: i64,
) {
    // SAFETY: `f` came from `binary_address`, a `fn(f64, f64) -> f64`.
    let f = unsafe { std::mem::transmute::<usize, fn(f64, f64) -> f64>(f as usize) };
    // SAFETY: see the module's contract (a stride of 0 reads element 0 only).
    unsafe { elementwise(f, dst, (a, a_stride), (b, b_stride), len) }
}

/// `dst = a op b` elementwise for the operations that vectorise (`code` 0 add, 1 subtract,
/// 2 multiply, 3 divide, 4 `f64::max`, 5 `f64::min`, 6 `interp::at_least`), a scalar operand
/// having stride 0: the same functions as [`vec_binary`] calls, so the same bits, in loops the
/// compiler vectorises instead of a call per element.
pub unsafe extern "C" fn vec_arith(
    code: i64,
    dst: *mut f64,
    a: *const f64,
    a_stride: i64,
    b: *const f64,
    b_stride: i64,
    len: i64,
) {
    let (a, b) = ((a, a_stride), (b, b_stride));
    // SAFETY: see the module's contract; each element is read before the same index is written.
    unsafe {
        match code {
            0 => elementwise(|x, y| x + y, dst, a, b, len),
            1 => elementwise(|x, y| x - y, dst, a, b, len),
            2 => elementwise(|x, y| x * y, dst, a, b, len),
            3 => elementwise(|x, y| x / y, dst, a, b, len),
            4 => elementwise(f64::max, dst, a, b, len),
            5 => elementwise(f64::min, dst, a, b, len),
            _ => elementwise(crate::interp::at_least, dst, a, b, len),
        }
    }
}

/// The code [`vec_arith`] computes `op` by, if it does.
pub fn arith_code(op: BinaryOp) -> Option<i64> {
    Some(match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Max => 4,
        BinaryOp::Min => 5,
        BinaryOp::AtLeast => 6,
        BinaryOp::Pow | BinaryOp::And | BinaryOp::Or => return None,
    })
}

/// # Safety
/// As [`vec_arith`].
#[inline(always)]
unsafe fn elementwise(
    f: impl Fn(f64, f64) -> f64 + Copy,
    dst: *mut f64,
    a: (*const f64, i64),
    b: (*const f64, i64),
    len: i64,
) {
    // Each element is one IEEE operation: the same bits at any vector width.
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, and the rest is the caller's.
        return unsafe { elementwise_avx2(f, dst, a, b, len) };
    }
    // SAFETY: the caller's.
    unsafe { elementwise_plain(f, dst, a, b, len) }
}

/// [`elementwise_plain`], compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2; and as [`vec_arith`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn elementwise_avx2(
    f: impl Fn(f64, f64) -> f64 + Copy,
    dst: *mut f64,
    a: (*const f64, i64),
    b: (*const f64, i64),
    len: i64,
) {
    // SAFETY: the caller's.
    unsafe { elementwise_plain(f, dst, a, b, len) }
}

/// # Safety
/// As [`vec_arith`].
#[inline(always)]
unsafe fn elementwise_plain(
    f: impl Fn(f64, f64) -> f64 + Copy,
    dst: *mut f64,
    (a, a_stride): (*const f64, i64),
    (b, b_stride): (*const f64, i64),
    len: i64,
) {
    // An operand of stride 0 is read once, and only if there are elements.
    let Ok(len @ 1..) = usize::try_from(len) else { return };
    // SAFETY: the caller's.
    unsafe {
        match (a_stride, b_stride) {
            (0, _) => {
                let x = *a;
                for i in 0..len {
                    *dst.add(i) = f(x, *b.add(i));
                }
            }
            (_, 0) => {
                let y = *b;
                for i in 0..len {
                    *dst.add(i) = f(*a.add(i), y);
                }
            }
            _ => {
                for i in 0..len {
                    *dst.add(i) = f(*a.add(i), *b.add(i));
                }
            }
        }
    }
}

pub unsafe extern "C" fn copy(dst: *mut f64, src: *const f64, len: i64) {
    // SAFETY: see the module's contract; `copy` allows overlapping ranges.
    unsafe { std::ptr::copy(src, dst, len as usize) }
}

pub unsafe extern "C" fn sum(src: *const f64, len: i64) -> f64 {
    // SAFETY: see the module's contract.
    unsafe { slice(src, len) }.iter().sum()
}

pub unsafe extern "C" fn logsumexp(src: *const f64, len: i64) -> f64 {
    // SAFETY: see the module's contract.
    ppl_runtime::logsumexp(unsafe { slice(src, len) })
}

pub unsafe extern "C" fn minimum(src: *const f64, len: i64) -> f64 {
    // SAFETY: see the module's contract.
    ppl_runtime::minimum(unsafe { slice(src, len) })
}

pub unsafe extern "C" fn maximum(src: *const f64, len: i64) -> f64 {
    // SAFETY: see the module's contract.
    ppl_runtime::maximum(unsafe { slice(src, len) })
}

/// `ppl_runtime::matmul`, as the interpreter calls it: `kind` 0 is vector·vector (the result
/// returned), 1 matrix·vector, 2 vector·matrix, 3 matrix·matrix; `a` is m×n, `b` n×p.
pub unsafe extern "C" fn matmul(kind: i64, dst: *mut f64, a: *const f64, b: *const f64, m: i64, n: i64, p: i64) -> f64 {
    let (m, p) = match kind {
        0 => (1, 1),
        1 => (m, 1),
        2 => (1, p),
        _ => (m, p),
    };
    // SAFETY: see the module's contract; a vector·vector product writes into a local.
    unsafe {
        let (a, b) = (slice(a, m * n), slice(b, n * p));
        if kind == 0 {
            let mut dot = [0.0];
            ppl_runtime::matmul(a, b, &mut dot, 1, n as usize, 1);
            return dot[0];
        }
        let out = std::slice::from_raw_parts_mut(dst, (m * p) as usize);
        ppl_runtime::matmul(a, b, out, m as usize, n as usize, p as usize);
        0.0
    }
}

/// `flags`: bit 0 if `a` is stored transposed, bit 1 if `b` is, bit 2 for single precision, in
/// which `a_rounded` and `b_rounded`, when not null, hold the operands already rounded to f32,
/// and bit 3 leaves the result in f32, two to a word of `dst` (`ppl_runtime::narrow_view`).
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn matmul_transposed(
    flags: i64,
    dst: *mut f64,
    a: *const f64,
    b: *const f64,
    m: i64,
    n: i64,
    p: i64,
    a_rounded: *const f32,
    b_rounded: *const f32,
) {
    let transposed = ppl_runtime::Transposed { a: flags & 1 != 0, b: flags & 2 != 0 };
    // SAFETY: see the module's contract; a rounded copy, when given, is as long as its operand.
    unsafe {
        let (a, b) = (slice(a, m * n), slice(b, n * p));
        let out = slice_mut(dst, m * p);
        let rounded = |copy: *const f32, len: usize| (!copy.is_null()).then(|| std::slice::from_raw_parts(copy, len));
        let (a_rounded, b_rounded) = (rounded(a_rounded, a.len()), rounded(b_rounded, b.len()));
        let (m, n, p) = (m as usize, n as usize, p as usize);
        let operands = [(a, a_rounded), (b, b_rounded)];
        match flags & 12 {
            0 => ppl_runtime::matmul_transposed(a, b, out, m, n, p, transposed),
            4 => ppl_runtime::matmul_single_rounded(operands, SingleOut::Wide(out), (m, n, p), transposed),
            _ => {
                let out = SingleOut::Narrow(ppl_runtime::narrow_view_mut(out, m * p));
                ppl_runtime::matmul_single_rounded(operands, out, (m, n, p), transposed)
            }
        }
    }
}

/// `dst = src` rounded to f32 (`ppl_runtime::round_to_single`), `len` elements: the copy that
/// single-precision products sharing an operand read.
pub unsafe extern "C" fn round_to_single(src: *const f64, dst: *mut f32, len: i64) {
    // SAFETY: see the module's contract; `dst` is room of its own for `len` f32 values.
    unsafe { ppl_runtime::round_to_single(slice(src, len), std::slice::from_raw_parts_mut(dst, len as usize)) }
}

/// `dst = src` widened from f32 (`ppl_runtime::widen_from_single`), `len` elements: the rows of
/// a product's result left in f32 that a tiled run reads.
pub unsafe extern "C" fn widen(dst: *mut f64, src: *const f32, len: i64) {
    // SAFETY: see the module's contract; `src` is `len` f32 values of a slot other than `dst`.
    unsafe { ppl_runtime::widen_from_single(std::slice::from_raw_parts(src, len as usize), slice_mut(dst, len)) }
}

pub unsafe extern "C" fn transpose(dst: *mut f64, src: *const f64, rows: i64, cols: i64) {
    // SAFETY: see the module's contract.
    unsafe {
        let src = slice(src, rows * cols);
        let (rows, cols) = (rows as usize, cols as usize);
        for j in 0..cols {
            for i in 0..rows {
                *dst.add(j * rows + i) = src[i * cols + j];
            }
        }
    }
}

/// `dst = a ⊗ b` (`ppl_runtime::outer`), `dst` being `m × n`.
pub unsafe extern "C" fn outer(dst: *mut f64, a: *const f64, m: i64, b: *const f64, n: i64) {
    // SAFETY: see the module's contract; `dst` is the result's own slot, apart from `a` and `b`.
    unsafe { ppl_runtime::outer(slice_mut(dst, m * n), slice(a, m), slice(b, n)) }
}

/// `dst += a ⊗ b` (`ppl_runtime::add_outer`), `dst` being `m × n`.
pub unsafe extern "C" fn add_outer(dst: *mut f64, a: *const f64, m: i64, b: *const f64, n: i64) {
    // SAFETY: see the module's contract; `dst` is the result's own slot, apart from `a` and `b`.
    unsafe { ppl_runtime::add_outer(slice_mut(dst, m * n), slice(a, m), slice(b, n)) }
}

/// `dst` (`total` words) zero but for the `len` words of `src` from word `offset`.
pub unsafe extern "C" fn place(dst: *mut f64, src: *const f64, offset: i64, len: i64, total: i64) {
    // SAFETY: see the module's contract; the verifier checked that the part fits.
    unsafe {
        let dst = slice_mut(dst, total);
        dst.fill(0.0);
        dst[offset as usize..(offset + len) as usize].copy_from_slice(slice(src, len));
    }
}

pub unsafe extern "C" fn rng_copy(dst: *mut Rng, src: *const Rng) {
    // SAFETY: both point at initialised streams in the caller's scratch.
    unsafe { (*dst).clone_from(&*src) }
}

/// Advances a copy of `src` into `dst` (or `src` itself, when they are the same slot) and
/// returns the noise drawn: 0 uniform, 1 normal.
pub unsafe extern "C" fn draw(kind: i64, src: *const Rng, dst: *mut Rng) -> f64 {
    // SAFETY: as `rng_copy`; the copy is skipped when both are one slot.
    unsafe {
        if !std::ptr::eq(src, dst) {
            (*dst).clone_from(&*src);
        }
        if kind == 0 {
            (*dst).uniform()
        } else {
            (*dst).standard_normal()
        }
    }
}

pub unsafe extern "C" fn split(src: *const Rng, left: *mut Rng, right: *mut Rng) {
    // SAFETY: as `draw`.
    unsafe {
        if !std::ptr::eq(src, left) {
            (*left).clone_from(&*src);
        }
        *right = (*left).fork();
    }
}

pub unsafe extern "C" fn stream_after(src: *const Rng, dst: *mut Rng, offset: i64) {
    // SAFETY: as `draw`.
    unsafe { *dst = (*src).stream_after(offset as u64) }
}

/// Draws from a runtime sampler into `out` (a real for gamma, an int's bits otherwise);
/// returns 0, or 1 if the argument is outside the sampler's domain. `kind`: 0 gamma, 1
/// poisson, 2 geometric, 3 categorical (`arg` unused, weights at `weights`), 4 binomial (`len`
/// trials, `arg` the probability).
pub unsafe extern "C" fn sample(
    kind: i64,
    src: *const Rng,
    dst: *mut Rng,
    arg: f64,
    weights: *const f64,
    len: i64,
    out: *mut i64,
) -> i64 {
    // SAFETY: as `draw` and the module's contract.
    unsafe {
        if !std::ptr::eq(src, dst) {
            (*dst).clone_from(&*src);
        }
        let rng = &mut *dst;
        let drawn = match kind {
            0 => ppl_runtime::sample::gamma(rng, arg, 1.0).map(|x| x.to_bits() as i64),
            1 => ppl_runtime::sample::poisson(rng, arg).map(ppl_runtime::sample::count_to_int),
            2 => ppl_runtime::sample::geometric(rng, arg).map(ppl_runtime::sample::count_to_int),
            4 => match u64::try_from(len) {
                Ok(trials) => ppl_runtime::sample::binomial(rng, trials, arg).map(ppl_runtime::sample::count_to_int),
                Err(_) => return 1,
            },
            _ => ppl_runtime::sample::categorical(rng, slice(weights, len)).map(|i| i as i64),
        };
        match drawn {
            Ok(bits) => {
                *out = bits;
                0
            }
            Err(_) => 1,
        }
    }
}

/// `ppl_runtime::sample::subsample` into `size` words at `rows`; 1 if it failed.
pub unsafe extern "C" fn subsample(src: *const Rng, dst: *mut Rng, rows: *mut f64, population: i64, size: i64) -> i64 {
    // SAFETY: as `sample` and the module's contract.
    unsafe {
        if !std::ptr::eq(src, dst) {
            (*dst).clone_from(&*src);
        }
        let rows = std::slice::from_raw_parts_mut(rows, size as usize);
        match ppl_runtime::sample::subsample(&mut *dst, population as u64, rows) {
            Ok(()) => 0,
            Err(_) => 1,
        }
    }
}

/// `softplus(x)`, with `sigmoid(x)` written to `*sigmoid` (`ppl_runtime::softplus_and_sigmoid`).
pub unsafe extern "C" fn softplus_sigmoid(x: f64, sigmoid: *mut f64) -> f64 {
    let (softplus, both_sigmoid) = ppl_runtime::softplus_and_sigmoid(x);
    // SAFETY: `sigmoid` is the frame's scratch word.
    unsafe { *sigmoid = both_sigmoid };
    softplus
}

/// `softplus` and `sigmoid` of each of `len` words from `src`, into two other slots
/// (`ppl_runtime::softplus_and_sigmoid_slices`).
/// Softplus of every element (`ppl_runtime::softplus_slice`).
pub unsafe extern "C" fn vec_softplus(dst: *mut f64, src: *const f64, len: i64) {
    // SAFETY: see the module's contract.
    unsafe { ppl_runtime::softplus_slice(slice(src, len), slice_mut(dst, len)) }
}

/// Floor of every element (`ppl_runtime::floor_slice`).
pub unsafe extern "C" fn vec_floor(dst: *mut f64, src: *const f64, len: i64) {
    // SAFETY: see the module's contract.
    unsafe { ppl_runtime::floor_slice(slice(src, len), slice_mut(dst, len)) }
}

pub unsafe extern "C" fn vec_softplus_sigmoid(softplus: *mut f64, sigmoid: *mut f64, src: *const f64, len: i64) {
    // SAFETY: see the module's contract; the three are different values' slots (or data).
    unsafe {
        ppl_runtime::softplus_and_sigmoid_slices(slice(src, len), slice_mut(softplus, len), slice_mut(sigmoid, len))
    }
}

/// [`vec_softplus_sigmoid`] in f32 (`ppl_runtime::softplus_and_sigmoid_single`).
pub unsafe extern "C" fn vec_softplus_sigmoid_single(softplus: *mut f64, sigmoid: *mut f64, src: *const f64, len: i64) {
    // SAFETY: see the module's contract; the three are different values' slots (or data).
    unsafe {
        ppl_runtime::softplus_and_sigmoid_single(slice(src, len), slice_mut(softplus, len), slice_mut(sigmoid, len))
    }
}

pub extern "C" fn gamma_sample_dshape(x: f64, shape: f64) -> f64 {
    ppl_runtime::gamma_sample_dshape(x, shape)
}

/// Integer arithmetic with the interpreter's overflow checks: `code` 0 add, 1 sub, 2 mul,
/// 3 negate (`b` unused); sets `*failed` on overflow.
pub unsafe extern "C" fn int_arith(code: i64, a: i64, b: i64, failed: *mut i64) -> i64 {
    let result = match code {
        0 => a.checked_add(b),
        1 => a.checked_sub(b),
        2 => a.checked_mul(b),
        _ => a.checked_neg(),
    };
    result.unwrap_or_else(|| {
        // SAFETY: `failed` is the frame's flag.
        unsafe { *failed = 1 };
        0
    })
}

pub unsafe extern "C" fn tape_push(tape: *mut Vec<f64>, src: *const f64, len: i64) {
    // SAFETY: `tape` is the frame's tape; see the module's contract for `src`.
    unsafe { (*tape).extend_from_slice(slice(src, len)) }
}

/// Pops `len` values into `dst` (in the order they were pushed); 1 if the tape is too short.
pub unsafe extern "C" fn tape_pop(tape: *mut Vec<f64>, dst: *mut f64, len: i64) -> i64 {
    // SAFETY: as `tape_push`.
    unsafe {
        let tape = &mut *tape;
        let Some(start) = tape.len().checked_sub(len as usize) else { return 1 };
        std::ptr::copy_nonoverlapping(tape.as_ptr().add(start), dst, len as usize);
        tape.truncate(start);
        0
    }
}

/// Every shim by the name compiled code imports it under.
pub fn symbols() -> Vec<(&'static str, *const u8)> {
    vec![
        ("ppl_real_unary", apply_unary as *const u8),
        ("ppl_real_binary", apply_binary as *const u8),
        ("ppl_vec_unary", vec_unary as *const u8),
        ("ppl_vec_sign", vec_sign as *const u8),
        ("ppl_vec_binary", vec_binary as *const u8),
        ("ppl_copy", copy as *const u8),
        ("ppl_round_to_single", round_to_single as *const u8),
        ("ppl_widen", widen as *const u8),
        ("ppl_sum", sum as *const u8),
        ("ppl_logsumexp", logsumexp as *const u8),
        ("ppl_minimum", minimum as *const u8),
        ("ppl_vec_arith", vec_arith as *const u8),
        ("ppl_add_outer", add_outer as *const u8),
        ("ppl_place", place as *const u8),
        ("ppl_subsample", subsample as *const u8),
        ("ppl_maximum", maximum as *const u8),
        ("ppl_matmul", matmul as *const u8),
        ("ppl_transpose", transpose as *const u8),
        ("ppl_matmul_transposed", matmul_transposed as *const u8),
        ("ppl_outer", outer as *const u8),
        ("ppl_rng_copy", rng_copy as *const u8),
        ("ppl_draw", draw as *const u8),
        ("ppl_split", split as *const u8),
        ("ppl_stream_after", stream_after as *const u8),
        ("ppl_sample", sample as *const u8),
        ("ppl_gamma_sample_dshape", gamma_sample_dshape as *const u8),
        ("ppl_softplus_sigmoid", softplus_sigmoid as *const u8),
        ("ppl_vec_softplus_sigmoid", vec_softplus_sigmoid as *const u8),
        ("ppl_vec_softplus_sigmoid_single", vec_softplus_sigmoid_single as *const u8),
        ("ppl_vec_softplus", vec_softplus as *const u8),
        ("ppl_vec_floor", vec_floor as *const u8),
        ("ppl_int_arith", int_arith as *const u8),
        ("ppl_tape_push", tape_push as *const u8),
        ("ppl_tape_pop", tape_pop as *const u8),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::real_binary;

    /// The vectorised loops give each element the bits of the interpreter's function for the
    /// operation, signed zeros, NaNs and infinities included, with either operand a scalar.
    #[test]
    fn vectorised_operations_have_the_interpreters_bits() {
        let specials = [0.0, -0.0, 1.0, -1.0, f64::NAN, -f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e-310, 2.5];
        let (a, b): (Vec<f64>, Vec<f64>) = specials
            .iter()
            .flat_map(|x| specials.iter().map(move |y| (*x, *y)))
            .chain((0..37).map(|k| (k as f64 * 0.3 - 5.0, 1.0 - k as f64 * 0.2)))
            .unzip();
        let ops = [
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Div,
            BinaryOp::Max,
            BinaryOp::Min,
            BinaryOp::AtLeast,
        ];
        for op in ops {
            let (code, f) = (arith_code(op).expect("a vectorised operation"), real_binary(op).expect("a function"));
            for (a_stride, b_stride) in [(1, 1), (0, 1), (1, 0)] {
                let mut out = vec![0.0; a.len()];
                // SAFETY: `out`, `a` and `b` have the length given (stride 0 reads element 0).
                unsafe {
                    vec_arith(code, out.as_mut_ptr(), a.as_ptr(), a_stride, b.as_ptr(), b_stride, a.len() as i64)
                };
                for (k, result) in out.iter().enumerate() {
                    let (x, y) = (a[k * a_stride as usize], b[k * b_stride as usize]);
                    assert_eq!(result.to_bits(), f(x, y).to_bits(), "{op:?}({x}, {y})");
                }
            }
        }
    }
}
