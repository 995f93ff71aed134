//! Reproducible random-number streams: the only source of randomness for compiled objectives.
//!
//! # Stream design
//!
//! [`Rng`] is ChaCha with 8 rounds (`rand_chacha::ChaCha8Rng`), a counter-based generator:
//! its output is a pure function of a 256-bit *key*, a 64-bit *stream* number (ChaCha's
//! nonce) and a 64-bit *block counter*. [`Rng::new`]`(seed, stream)` uses
//!
//! - key = four successive SplitMix64 outputs from `seed`, little-endian (the first of them
//!   is a bijection of `seed`, so distinct seeds give distinct keys);
//! - nonce = `stream`;
//! - counter = 0.
//!
//! Distinct `(seed, stream)` pairs therefore select distinct ChaCha keystreams, which are
//! independent for every practical purpose, and each stream holds 2^64 blocks of 64 bytes, so
//! one estimate can never run into another. The caller gives each unit of work (an estimate, a
//! particle, a training step) its own stream number, derived from *what* it is, never from
//! *when* or *on which thread* it runs; a run is then reproducible bit for bit whatever the
//! thread count or evaluation order. A stream id can pack several indices, e.g.
//! `(step << 32) | particle`.
//!
//! The generator's output depends only on integer arithmetic, and the derived floats
//! ([`Rng::uniform`], [`Rng::standard_normal`]) only on IEEE arithmetic and the pure-Rust
//! `libm` (which `rand_distr` uses for its transcendental functions as long as nobody enables its
//! `std_math` feature), so sequences are identical across platforms too.
//!
//! This module owns only the generator and the two base noises; distributions built on top
//! live in [`crate::sample`]. It must not read any global or thread-local state (no
//! `thread_rng`, no OS entropy): every random bit comes from an explicit seed.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// 2^-52, the spacing of the grid [`Rng::uniform`] draws from.
const UNIFORM_SPACING: f64 = 1.0 / (1u64 << 52) as f64;

/// A seedable, splittable random-number stream. See the module documentation for the design.
///
/// It implements [`rand_core::RngCore`], so `rand`/`rand_distr` distributions accept it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    chacha: ChaCha8Rng,
}

impl Rng {
    /// The stream number `stream` of the generator seeded by `seed`, positioned at its start.
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut chacha = ChaCha8Rng::from_seed(key(seed));
        chacha.set_stream(stream);
        Rng { chacha }
    }

    /// Makes this the stream [`Rng::new`]`(seed, stream)` would make, in place: a caller that
    /// starts a stream per sample reuses one generator's memory instead of moving a new one in.
    #[inline]
    pub fn restart(&mut self, seed: u64, stream: u64) {
        self.chacha = ChaCha8Rng::from_seed(key(seed));
        self.chacha.set_stream(stream);
    }

    /// 64 uniformly random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.chacha.next_u64()
    }

    /// A uniform draw from the open interval (0, 1): never 0 and never 1, so `ln(u)` and
    /// `ln(1 - u)` are always finite.
    ///
    /// The value is `(k + 1/2) · 2^-52` for `k` the top 52 bits of one [`Rng::next_u64`]: the
    /// midpoints of 2^52 equal cells, smallest 2^-53, largest 1 − 2^-53, all exactly
    /// representable (and `1 - u` is exact too, so the grid is symmetric).
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 12) as f64 + 0.5) * UNIFORM_SPACING
    }

    /// The stream `offset` places after this one's in its seed's numbering, at its start: the
    /// stream [`Rng::new`]`(seed, stream + offset)` (wrapping). A step's particles are streams
    /// in a row, so a program running them all derives each one's from the first.
    pub fn stream_after(&self, offset: u64) -> Rng {
        let mut chacha = ChaCha8Rng::from_seed(self.chacha.get_seed());
        chacha.set_stream(self.chacha.get_stream().wrapping_add(offset));
        Rng { chacha }
    }

    /// A new stream, independent of this one, whose key and stream number are the next two
    /// outputs of this one. Used where a program needs fresh randomness that must not disturb
    /// the draws after it (the other branch of a measure-valued derivative).
    pub fn fork(&mut self) -> Rng {
        let seed = self.next_u64();
        let stream = self.next_u64();
        Rng::new(seed, stream)
    }

    /// A standard normal draw N(0, 1) (the ziggurat method of `rand_distr`).
    #[inline]
    pub fn standard_normal(&mut self) -> f64 {
        StandardNormal.sample(self)
    }
}

impl RngCore for Rng {
    #[inline]
    fn next_u32(&mut self) -> u32 {
        self.chacha.next_u32()
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.chacha.next_u64()
    }

    #[inline]
    fn fill_bytes(&mut self, destination: &mut [u8]) {
        self.chacha.fill_bytes(destination)
    }
}

/// The ChaCha key of `seed`: four successive SplitMix64 outputs, little-endian.
fn key(seed: u64) -> [u8; 32] {
    let mut key = [0u8; 32];
    let mut splitmix_state = seed;
    for word in key.chunks_exact_mut(8) {
        word.copy_from_slice(&splitmix64(&mut splitmix_state).to_le_bytes());
    }
    key
}

/// One step of SplitMix64 (Steele, Lea & Flood 2014): a bijective mixer of a Weyl sequence,
/// used only to spread a 64-bit seed over the 256-bit ChaCha key.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_extremes_stay_inside_the_open_interval() {
        let smallest = 0.5 * UNIFORM_SPACING;
        let largest = ((u64::MAX >> 12) as f64 + 0.5) * UNIFORM_SPACING;
        assert!(smallest > 0.0);
        assert!(largest < 1.0);
        assert_eq!(1.0 - largest, smallest);
    }

    #[test]
    fn a_fork_is_reproducible_and_differs_from_its_parent() {
        let (mut a, mut b) = (Rng::new(5, 1), Rng::new(5, 1));
        let (mut fork_a, mut fork_b) = (a.fork(), b.fork());
        assert_eq!(fork_a.next_u64(), fork_b.next_u64());
        assert_ne!(fork_a.next_u64(), a.next_u64());
    }

    #[test]
    fn a_stream_after_another_is_that_stream_from_its_start() {
        let mut used = Rng::new(7, 40);
        used.next_u64();
        let (mut after, mut direct) = (used.stream_after(3), Rng::new(7, 43));
        for _ in 0..4 {
            assert_eq!(after.next_u64(), direct.next_u64());
        }
        assert_eq!(Rng::new(7, u64::MAX).stream_after(2).next_u64(), Rng::new(7, 1).next_u64());
    }

    #[test]
    fn splitmix_matches_the_reference_output() {
        // First outputs of the reference C implementation seeded with 1234567.
        let mut state = 1234567;
        assert_eq!(splitmix64(&mut state), 6457827717110365317);
        assert_eq!(splitmix64(&mut state), 3203168211198807973);
    }
}
