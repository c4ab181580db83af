use nixstack::nixcheck::{check_files, OptionDb, KNOWN_UNCOVERED};
#[test]
fn check() {
    for spec in ["examples/default.toml", "examples/whiteboard.toml"] {
        let text = std::fs::read_to_string(spec).unwrap();
        let topology = nixstack::cli::compile(&nixstack::spec::SpecSource { name: spec.into(), text }).unwrap();
        let files = nixstack::render::tree::artifacts(&topology);
        let modules: Vec<(String,String)> = files.iter().filter(|(p,_)| p.starts_with("modules/")).map(|(p,t)|(p.clone(),t.clone())).collect();
        let all_tmp: Vec<(String,String)> = files.iter().map(|(p,t)| (p.clone(), t.replace("listenHTTP","listenHTTQ").replace("flushRuleset = true","flushRuleset = 1").replace("prefixLength = 24","prefixLength = 33").replace("ExecStart = \"${cfg.package}","ExecStart = \"${cfg.package}").replace("bootLoader = \"systemd-boot\"","bootLoader = \"uefi\""))).filter(|(p,_)| p.ends_with(".nix") && p.as_str() != "flake.nix").map(|(p,t)|(p.clone(),t.clone())).collect();
        let mut db = OptionDb::nixos();
        if let Err(p) = db.with_modules(&modules) { for x in p { println!("DECL {x}"); } }
        let all: Vec<(String,String)> = all_tmp.iter().filter(|(p,_)| p.ends_with(".nix") && p.as_str() != "flake.nix").cloned().collect();
        let report = check_files(&db, &all);
        for p in &report.problems { println!("{p}"); }
        println!("uncovered: {:?}", report.uncovered_outside(KNOWN_UNCOVERED));
    }
}
