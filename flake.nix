# nixstack's own flake: the tool, not a stack. `nix run github:<owner>/nixstack -- check`
# runs it; the flakes it generates (`nixstack build`) live wherever `-o` puts them, never here.
{
  description = "nixstack: a web stack described once in stack.toml, compiled to a NixOS flake";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      # The systems nixstack's stacks run on (stack.system), and so where operators run it.
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forEachSystem = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forEachSystem (pkgs: {
        nixstack = pkgs.callPackage ./nix/package.nix { };
        default = self.packages.${pkgs.stdenv.hostPlatform.system}.nixstack;
      });

      apps = forEachSystem (pkgs: {
        default = {
          type = "app";
          program = lib.getExe self.packages.${pkgs.stdenv.hostPlatform.system}.nixstack;
        };
      });

      # Working on nixstack itself: its build inputs, and the toolchain's formatter and linter.
      devShells = forEachSystem (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.nixstack ];
          packages = [
            pkgs.clippy
            pkgs.rustfmt
          ];
        };
      });

      formatter = forEachSystem (pkgs: pkgs.nixfmt-rfc-style);
    };
}
