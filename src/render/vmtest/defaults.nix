{ lib, pkgs, ... }:
{
  # No SLiRP card: the test driver talks to the VMs over a virtio console, and without
  # it the first VLAN card is eth0, as the rendered configs expect (Layout::nixos).
  virtualisation.qemu.networkingOptions = lib.mkForce [ ];
  virtualisation.memorySize = 1024;

  # The scenario's clients: curl, socat for HAProxy's admin socket, the MariaDB client.
  environment.systemPackages = [
    pkgs.curl
    pkgs.mariadb
    pkgs.socat
  ];
}
