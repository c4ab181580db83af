# The demo app's static assets (`[web] static = "nixstack-demo-static"` without `[app] source`):
# app/static as a package. Files under assets/ carry a hash in their names (fingerprinted).
# The flake refers to it as `pkgs.callPackage ./app/static.nix { }`.
{ runCommand }:
runCommand "nixstack-demo-static" { } ''
  cp -r ${./static} $out
''
