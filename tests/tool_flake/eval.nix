# Evaluates nixstack's own flake (../../flake.nix) with a stand-in nixpkgs that has just what
# the flake and nix/package.nix call: `rustPlatform.buildRustPackage` returns the attributes it
# was given, so tests/tool_flake.rs can check them against Cargo.toml and the sources.
{ repo }:
let
  lib = {
    genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
    importTOML = path: builtins.fromTOML (builtins.readFile path);
    # nixpkgs' lib.getExe: the main program of a package's bin/.
    getExe = package: "${package.outPath}/bin/${package.meta.mainProgram}";
    fileset = {
      unions = paths: paths;
      toSource = { root, fileset }: { root = toString root; files = map toString fileset; };
    };
    licenses.mit = "mit";
    platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
  };
  packagesFor = system: rec {
    stdenv.hostPlatform.system = system;
    callPackage = path: overrides: import path ({ inherit lib rustPlatform; } // overrides);
    rustPlatform.buildRustPackage = attrs: attrs // {
      outPath = "/nix/store/stand-in-${attrs.pname}-${attrs.version}";
    };
    mkShell = attrs: attrs;
    clippy = "clippy";
    rustfmt = "rustfmt";
    nixfmt-rfc-style = "nixfmt";
  };
  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] packagesFor;
  };
  flake = import (repo + "/flake.nix");
  self = flake.outputs { inherit self nixpkgs; };
  package = self.packages.x86_64-linux.nixstack;
in
{
  inputs = builtins.mapAttrs (_: input: input.url) flake.inputs;
  systems = builtins.attrNames self.packages;
  package = {
    inherit (package) pname version doCheck;
    src = package.src.files;
    srcRoot = package.src.root;
    lockFile = toString package.cargoLock.lockFile;
    inherit (package.meta) mainProgram license;
  };
  defaultIsNixstack = self.packages.x86_64-linux.default.pname == package.pname;
  app = self.apps.x86_64-linux.default;
  shellInputsFrom = map (p: p.pname) self.devShells.x86_64-linux.default.inputsFrom;
}
