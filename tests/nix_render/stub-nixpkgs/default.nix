# `import nixpkgs { system; overlays; }` of the stand-in: packages are their names, builders
# return a description of what they were asked to build, overlays are applied.
{
  system,
  overlays ? [ ],
}:
let
  names = [
    "haproxy"
    "iana-etc"
    "keepalived"
    "libredirect"
    "mariadb"
    "nftables"
    "nginx"
    "nixfmt"
    "nixfmt-rfc-style"
    "nixos-anywhere"
    "openssl"
  ];
  base = builtins.listToAttrs (
    map (name: {
      inherit name;
      value = "${system}-${name}";
    }) names
  ) // {
    lklWithFirewall.lib = "${system}-lkl";
    # What an initialized nixpkgs carries and colmena's eval.nix reads (`mkNixpkgs`, `evalNode`).
    inherit system overlays;
    config = { };
    path = ./.;
    runCommand = name: env: script: {
      inherit name env script;
    };
    mkShell = attrs: attrs;
    callPackage = path: args: {
      package = toString path;
      exists = builtins.pathExists path;
    };
  };
  pkgs = builtins.foldl' (previous: overlay: previous // overlay pkgs previous) base overlays;
in
pkgs
