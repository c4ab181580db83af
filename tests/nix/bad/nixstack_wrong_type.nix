{ ... }:
{
  nixstack.lb = {
    enable = true;
    virtualRouterId = 300;
    state = "PRIMARY";
    backends.web1.port = "443";
  };
}
