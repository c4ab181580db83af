# A stand-in for nixstack's own flake (this repository's flake.nix): the package the generated
# dev shell takes, by name and system. tests/tool_flake.rs holds the real flake to the same
# attribute path, `packages.<system>.nixstack`, for these two systems.
{
  outputs =
    { self }:
    {
      packages.x86_64-linux.nixstack = "x86_64-linux-nixstack";
      packages.aarch64-linux.nixstack = "aarch64-linux-nixstack";
    };
}
