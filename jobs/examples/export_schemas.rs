//! Writes the JSON Schema of every job to `jobs/schemas/<name>.json`.
//!
//! Run after changing a payload, then commit the files:
//! `cargo run -p copcca-jobs --example export_schemas`

use std::{fs, path::Path};

fn main() -> std::io::Result<()> {
    // Relative to the crate, not the working directory, so it can be run
    // from anywhere in the workspace.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    fs::create_dir_all(&dir)?;
    let files = copcca_jobs::schema_files();
    // Remove schemas of jobs that no longer exist, so the directory is
    // exactly what the types produce (the test checks that too).
    for entry in fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".json") && !files.iter().any(|(f, _)| f == name) {
            fs::remove_file(&path)?;
            println!("removed {}", path.display());
        }
    }
    for (name, text) in files {
        let path = dir.join(name);
        fs::write(&path, text)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
