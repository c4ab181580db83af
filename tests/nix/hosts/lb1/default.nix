# Sample generated host for tests/nix_options.rs (shaped like hosts/ in the repository root).
{ lib, ... }:
{
  imports = [
    ../../modules
    ./local.nix
  ];

  networking.hostName = "lb1";
  networking.firewall.enable = true;

  nixstack.lb = {
    enable = true;
    vip = "203.0.113.10/24";
    state = "MASTER";
    priority = 150;
    peers = [ "10.0.1.12" ];
    haproxyConfig = builtins.readFile ./haproxy.cfg;
    backends.web1 = {
      address = "10.0.2.11";
      port = 443;
    };
  };

  services.openssh.settings.PasswordAuthentication = false;
  users.users.deploy = {
    isNormalUser = true;
    extraGroups = [ "wheel" ];
  };

  nixpkgs.hostPlatform = "x86_64-linux";
  system.stateVersion = "24.11";
}
