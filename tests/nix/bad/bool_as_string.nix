{ ... }:
{
  services.haproxy.enable = "yes";
}
