{ ... }:
{
  nixstack.lb.vipp = "203.0.113.10/24";
}
