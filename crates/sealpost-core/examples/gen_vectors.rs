//! Writes the format test vectors: `cargo run -p sealpost-core --example gen_vectors -- DIR`.
//! `tests/format_vectors.rs` regenerates them in memory and fails if the files differ.

#[path = "../tests/common/vectors.rs"]
mod vectors;

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tests/vectors/format".into());
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("keys.txt"), vectors::keys_file())?;
    let cases = vectors::cases();
    for case in &cases {
        std::fs::write(dir.join(format!("{}.vector", case.name)), case.render())?;
    }
    println!(
        "wrote {} vectors and keys.txt to {}",
        cases.len(),
        dir.display()
    );
    Ok(())
}
