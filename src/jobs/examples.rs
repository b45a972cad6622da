//! The example jobs the repository ships in `examples/jobs/`, built into the binary so
//! `linkledger demo` runs them from any directory (and from the Docker image), and so
//! they never run against the real API unless a user copies them into a jobs directory.

use std::path::Path;

/// Each shipped example file, by its path below `examples/jobs/`, and its text.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "competitors.toml",
        include_str!("../../examples/jobs/competitors.toml"),
    ),
    ("links.toml", include_str!("../../examples/jobs/links.toml")),
    ("pages.toml", include_str!("../../examples/jobs/pages.toml")),
    (
        "portfolio.toml",
        include_str!("../../examples/jobs/portfolio.toml"),
    ),
    (
        "targets/portfolio.txt",
        include_str!("../../examples/jobs/targets/portfolio.txt"),
    ),
];

/// Writes the example jobs into `dir`, a jobs directory of them.
pub fn write_examples(dir: &Path) -> std::io::Result<()> {
    for (name, text) in EXAMPLES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_file_of_the_examples_directory_is_built_in() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/jobs");
        let mut on_disk = Vec::new();
        for entry in walk(&root) {
            on_disk.push(
                entry
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        on_disk.sort();
        let mut built_in: Vec<String> =
            super::EXAMPLES.iter().map(|(n, _)| n.to_string()).collect();
        built_in.sort();
        assert_eq!(on_disk, built_in);
    }

    use std::path::{Path, PathBuf};

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }
}
