# Calls a generated flake's `outputs` with the stand-in inputs of this directory (nixpkgs, disko,
# colmena, deploy-rs, sops-nix, agenix, nixstack), as Nix calls it with the real ones: each input is its own outputs plus
# `outPath`, `self` is the flake's outputs, and the function gets exactly the inputs it names.
# Every nixpkgs input (`nixpkgs`, and `nixpkgs-<release>` for the other channels a spec pins) is
# the nixpkgs stand-in marked with the input's name: its systems say `builtBy`, the `path` of its
# package sets (what colmena evaluates a node with) ends in it.
# The result describes what tests/nix_render.rs asserts on, in plain JSON-able values.
{ flakeDir }:
let
  inherit (builtins)
    attrNames
    functionArgs
    intersectAttrs
    isAttrs
    isPath
    isString
    mapAttrs
    pathExists
    ;

  callFlake =
    dir: inputs:
    let
      flake = import (dir + "/flake.nix");
      self = flake.outputs (inputs // { inherit self; }) // {
        outPath = dir;
      };
    in
    self;

  isNixpkgs = name: name == "nixpkgs" || builtins.substring 0 8 name == "nixpkgs-";
  nixpkgsInput =
    name:
    let
      stub = callFlake ./stub-nixpkgs { };
    in
    stub
    // {
      lib = stub.lib // {
        nixosSystem = arguments: stub.lib.nixosSystem arguments // { builtBy = name; };
      };
      legacyPackages = mapAttrs (_: pkgs: pkgs // { path = "${toString pkgs.path}/${name}"; }) stub.legacyPackages;
    };

  stubs = builtins.listToAttrs (
    map (name: {
      inherit name;
      value = nixpkgsInput name;
    }) (builtins.filter isNixpkgs arguments)
  )
  // {
    disko = callFlake ./stub-disko { };
    colmena = callFlake ./stub-colmena { };
    deploy-rs = callFlake ./stub-deploy-rs { };
    sops-nix = callFlake ./stub-sops-nix { };
    agenix = callFlake ./stub-agenix { };
    nixstack = callFlake ./stub-nixstack { };
  };

  flake = import (flakeDir + "/flake.nix");
  arguments = attrNames (functionArgs flake.outputs);
  self = callFlake flakeDir (intersectAttrs (functionArgs flake.outputs) stubs);

  # A module as JSON: a path (and whether it exists), a string (the stand-ins' modules), or the
  # names an inline module sets.
  describe =
    module:
    if isPath module then
      {
        path = toString module;
        exists = pathExists module;
      }
    else if isString module then
      module
    else if isAttrs module then
      attrNames module
    else
      builtins.typeOf module;
in
{
  inputs = mapAttrs (_: input: {
    url = input.url or null;
    follows = mapAttrs (_: follow: follow.follows or null) (input.inputs or { });
  }) flake.inputs;
  inherit arguments;
  outputs = attrNames (removeAttrs self [ "outPath" ]);
  # What each system's dev shell carries.
  shells = mapAttrs (_: shells: shells.default.packages) self.devShells;
  systems = mapAttrs (_: system: map describe system.modules) self.nixosConfigurations;
  # The secrets backend's module (sops-nix or agenix stand-in) checking each host's values:
  # the host file called as NixOS calls it (its `lib` and `pkgs` are not read for `sops`/`age`).
  secrets = mapAttrs (
    _: system:
    let
      hostValues = import (builtins.head system.modules) {
        lib.optional = condition: value: if condition then [ value ] else [ ];
        pkgs = { };
        config = { };
      };
      checkers = builtins.filter (module: isAttrs module && module ? _secretsCheck) system.modules;
    in
    map (module: module._secretsCheck hostValues) checkers
  ) self.nixosConfigurations;
  toplevels = mapAttrs (_: system: system.config.system.build.toplevel) self.nixosConfigurations;
  builtBy = mapAttrs (_: system: system.builtBy) self.nixosConfigurations;
  colmena =
    if self ? colmenaHive then
      {
        schema = self.colmenaHive.__schema;
        nodes = mapAttrs (_: node: {
          inherit (node) system evalConfig;
          inherit (node.config) deployment;
          modules = map describe node.modules;
        }) self.colmenaHive.nodes;
        deployment = self.colmenaHive.deploymentConfig;
      }
    else
      null;
  deploy =
    if self ? deploy then
      mapAttrs (
        _: node:
        node
        // {
          profiles = mapAttrs (
            _: profile:
            profile
            // {
              path = {
                inherit (profile.path) name system base;
              };
            }
          ) node.profiles;
        }
      ) self.deploy.nodes
    else
      null;
  checks = mapAttrs (_: attrNames) self.checks;
  # deploy-rs's checks, forced (the stand-in runs the schema and activation rules then); null
  # under the checks of a system that has none (another system's hosts' toplevels).
  deployChecks =
    if self ? deploy then
      mapAttrs (_: checks: {
        deploy-schema = checks.deploy-schema or null;
        deploy-activate = checks.deploy-activate or null;
      }) self.checks
    else
      null;
}
