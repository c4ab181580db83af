{ ... }:
{
  services.keepalived.vrrpInstances.v.virtualRouterId = 300;
}
