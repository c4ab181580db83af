# nixstack role modules. Every generated host (`hosts/<host>/default.nix`) imports this
# directory and sets data only:
#
# - NixOS options that take the spec's facts as they are (`networking.hostName`,
#   `networking.interfaces`, `services.mysql.galeraCluster`, `services.mysql.settings`,
#   `system.stateVersion`), so that the option checker judges them against NixOS's own types;
# - `nixstack.<role>` options declared here, where a module does something with the data
#   (installs a rendered config verbatim, runs a unit, grants access to the runtime secrets).
#
# Each role is off until its `enable` option is set, so importing every module is harmless.
{
  imports = [
    ./base.nix
    ./firewall.nix
    ./lb.nix
    ./nginx.nix
    ./web.nix
    ./app.nix
    ./db.nix
    ./monitoring.nix
  ];
}
