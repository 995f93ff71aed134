//! The standard library: `.ppl` sources from `stdlib/`, embedded at build time and checked
//! together with every user program. User definitions shadow library ones of the same name.

/// `(name shown in diagnostics, source text)` for each library file.
pub const FILES: &[(&str, &str)] = &[
    ("<stdlib>/vi.ppl", include_str!("../../stdlib/vi.ppl")),
    ("<stdlib>/nn.ppl", include_str!("../../stdlib/nn.ppl")),
    ("<stdlib>/math.ppl", include_str!("../../stdlib/math.ppl")),
];
