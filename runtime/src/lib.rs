//! The `ppl` runtime: what compiled objectives call and what drives them.
//!
//! It will own the seedable RNG streams, samplers and log-densities, special functions,
//! tensor kernels, optimizers and the training loop. It must never depend on the compiler:
//! compiled code and the embedding API call into it, not the other way round.
//!
//! The front end (issue: foundation) needs nothing from it yet; the ADEV core fills it.
