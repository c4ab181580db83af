{ ... }:
{
  networking.firewall.allowedTCPPorts = [
    443
    70000
  ];
}
