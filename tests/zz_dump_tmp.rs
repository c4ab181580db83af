#[test]
fn dump() {
    for spec in ["examples/default.toml", "examples/whiteboard.toml"] {
        let text = std::fs::read_to_string(spec).unwrap();
        let topology = nixstack::cli::compile(&nixstack::spec::SpecSource { name: spec.into(), text }).unwrap();
        let out = format!("/tmp/nxs-out/{}", topology.stack.name);
        for (path, text) in nixstack::render::tree::artifacts(&topology) {
            let p = std::path::Path::new(&out).join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }
}
