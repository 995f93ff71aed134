fn main() {
    let path = std::env::args().nth(1).unwrap_or_default();
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let analysis = ppl::check_source(&path, &text);
    print!("{}", analysis.render_diagnostics(ppl::diagnostics::ColorChoice::Never));
    for f in &analysis.files { println!("{} items", f.program.items.len()); }
}
