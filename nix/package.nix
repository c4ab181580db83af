# nixstack built by nixpkgs' own Rust builder: buildRustPackage vendors every crate from
# Cargo.lock (importCargoLock, one fixed-output fetch per crate), so the flake needs no input
# besides nixpkgs and no hash to bump when a dependency changes. crane or naersk would cache
# the dependencies apart from the crate, which matters for CI of big workspaces, not for one
# crate built on an operator's machine now and then.
{ lib, rustPlatform }:

let
  manifest = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = manifest.package.name;
  inherit (manifest.package) version;

  # What the compiler reads: the crate, and the files it embeds with include_str! (the role
  # modules, the demo app, the examples, the recorded nixpkgs and Mozilla data).
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../src
      ../app
      ../data
      ../examples
      ../modules
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;

  # The test suite runs the real daemons in network namespaces as root (README, "Tests"):
  # nothing of that exists in the build sandbox.
  doCheck = false;

  meta = {
    inherit (manifest.package) description;
    license = lib.licenses.mit;
    mainProgram = "nixstack";
    platforms = lib.platforms.linux;
  };
}
