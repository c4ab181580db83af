# Sample hand-written host additions for tests/nix_options.rs.
{ lib, ... }:
{
  time.timeZone = "UTC";
  services.journald.extraConfig = ''
    SystemMaxUse=1G
  '';
}
