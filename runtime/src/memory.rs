//! Buffers that one thread writes while other threads write theirs: each is allocated with
//! room to spare after its end, so the next allocation (another thread's) starts on another
//! cache line and the two threads do not keep stealing each other's lines.

/// Bytes kept free after a buffer: two cache lines, which also covers adjacent-line
/// prefetching.
const SPARE_BYTES: usize = 128;

/// `len` zeros in a buffer no other allocation shares a cache line with at its end.
pub fn zeros_apart(len: usize) -> Vec<f64> {
    let mut buffer = Vec::with_capacity(len + SPARE_BYTES / std::mem::size_of::<f64>());
    buffer.resize(len, 0.0);
    buffer
}

/// `copies` of `value` in a buffer with the same spare room.
pub fn filled_apart<T: Clone>(value: T, copies: usize) -> Vec<T> {
    let mut buffer = Vec::with_capacity(copies + SPARE_BYTES.div_ceil(std::mem::size_of::<T>().max(1)));
    buffer.resize(copies, value);
    buffer
}
