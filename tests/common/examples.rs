//! The example specs compiled, for the config tests: `default` is the embedded default
//! spec, any other name is `examples/<name>.toml`.

use std::path::Path;

use nixstack::spec::SpecSource;
use nixstack::topology::Topology;

pub fn spec(name: &str) -> Topology {
    let source = if name == "default" {
        SpecSource::embedded_default()
    } else {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(format!("{name}.toml"));
        SpecSource { name: path.display().to_string(), text: std::fs::read_to_string(&path).unwrap() }
    };
    nixstack::cli::compile(&source).unwrap_or_else(|e| panic!("{name}: {e:?}"))
}
