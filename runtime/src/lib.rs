//! The `ppl` runtime: the numeric kernels compiled objectives call.
//!
//! The compiler writes reparameterised samplers and log-densities as IR arithmetic over *base
//! noise* and *special functions*; this crate provides exactly those pieces, for the reference
//! interpreter and the Cranelift JIT alike (so both agree bit for bit):
//!
//! - [`rng`]: [`Rng`], reproducible counter-based random streams, one per estimate or particle,
//!   with the base noises [`Rng::uniform`] (open interval) and [`Rng::standard_normal`];
//! - [`sample`]: samplers that are not a transform of base noise — [`gamma`], [`beta`], [`flip`],
//!   [`categorical`], [`geometric`], [`poisson`] — each returning a [`DomainError`] for a bad
//!   parameter instead of panicking;
//! - [`special`]: [`lgamma`], [`digamma`], [`trigamma`], [`log1p`], [`expm1`], [`logsumexp`], [`minimum`], [`maximum`],
//!   [`softplus`], [`log_sigmoid`], [`sigmoid`], and [`softplus_and_sigmoid`] (both at once, the
//!   bits of each, for one exponential);
//! - [`special_single`]: [`softplus_and_sigmoid_single`], both in f32 over a slice (for
//!   `--precision f32`);
//! - [`implicit`]: [`gamma_sample_dshape`], the implicit-reparameterisation derivative of a
//!   gamma sample with respect to its shape;
//! - [`optim`]: what training (`maximize` / `minimize`) updates parameters with — an
//!   [`Optimizer`] built from a [`Method`] (SGD, Adam, AdamW, RMSprop, Adagrad, as PyTorch
//!   defines them) and a learning-rate [`Schedule`], checkpointed as an [`OptimizerState`] —
//!   and [`clip_by_norm`] / [`global_norm`] (or [`divide_and_norm`] and [`clip_to`], a pass fewer)
//!   for gradients;
//! - [`linalg`]: [`matmul`] and [`matmul_transposed`], the matrix product (the `gemm` crate's kernels for large ones);
//! - [`memory`]: buffers each worker thread writes without sharing cache lines with others.
//!
//! ```
//! use ppl_runtime::{gamma, gamma_sample_dshape, Rng};
//!
//! let mut rng = Rng::new(42, 7); // seed 42, stream 7: say, particle 7 of this run
//! let x = gamma(&mut rng, 2.5, 1.0)?; // x ~ Gamma(2.5, 1)
//! let dx_dshape = gamma_sample_dshape(x, 2.5); // its pathwise derivative in the shape
//! assert!(dx_dshape > 0.0);
//! # Ok::<(), ppl_runtime::DomainError>(())
//! ```
//!
//! The numeric kernels never allocate, panic or touch global state; an optimizer allocates its
//! buffers when built or checkpointed, and panics only when handed parameters whose shapes differ
//! from its own (a caller bug: checkpoints of the wrong shape are rejected as errors). The runtime
//! must never depend on the compiler: compiled code and the embedding API call into it, not the
//! other way round. Later it will also own tensor kernels and the training loop.

pub mod error;
pub mod implicit;
pub mod linalg;
pub mod memory;
pub mod optim;
pub mod rng;
pub mod sample;
pub mod single;
pub mod special;
pub mod special_single;

pub use error::DomainError;
pub use implicit::gamma_sample_dshape;
pub use linalg::{add_outer, matmul, matmul_transposed, outer, Transposed};
pub use optim::{
    clip_by_norm, clip_to, divide_and_norm, global_norm, Method, OptimError, Optimizer, OptimizerState, Schedule, Term,
};
pub use rng::Rng;
pub use sample::{beta, categorical, flip, gamma, geometric, poisson, POISSON_MAX_RATE};
pub use single::{
    matmul_single, matmul_single_rounded, narrow_view, narrow_view_mut, round_to_single, widen_from_single, Precision,
    SingleOut,
};
pub use special::{
    digamma, expm1, floor_slice, lgamma, log1p, log_sigmoid, logsumexp, maximum, minimum, sigmoid, softplus,
    softplus_and_sigmoid, softplus_and_sigmoid_slices, softplus_slice, trigamma,
};
pub use special_single::softplus_and_sigmoid_single;
