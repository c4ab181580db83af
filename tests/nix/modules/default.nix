# Sample role modules for tests/nix_options.rs (shaped like modules/ in the repository root).
{
  imports = [
    ./lb.nix
  ];
}
