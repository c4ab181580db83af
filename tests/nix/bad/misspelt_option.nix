{ ... }:
{
  services.haproxy.enabel = true;
}
