# nginx on every host that runs it: the web server of the web role, the TLS terminator in
# front of a plain-HTTP app of the app role, or both on one host. nixstack renders the
# whole nginx.conf (one file per host, both servers in it) and installs it verbatim.
{
  config,
  lib,
  ...
}:
let
  inherit (lib) mkOption types;
  cfg = config.nixstack.nginx;
  secretsGroup = config.nixstack.base.secretsGroup;
in
{
  options.nixstack.nginx = {
    enable = lib.mkEnableOption "nginx with the nginx.conf nixstack rendered for this host";

    config = mkOption {
      type = types.path;
      example = lib.literalExpression "./nginx.conf";
      description = ''
        The rendered `nginx.conf`. NixOS writes `pid`, `error_log` and `daemon off;` in front of
        {option}`services.nginx.config`, so the rendered file leaves those three out on NixOS
        and carries its own `events` and `http` blocks.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = config.services.nginx.virtualHosts == { };
        message = "nixstack.nginx installs a complete nginx.conf (services.nginx.config); services.nginx.virtualHosts would be ignored. Describe the site in the spec, or drop nixstack.nginx.";
      }
    ];

    services.nginx = {
      enable = true;
      config = builtins.readFile cfg.config;
    };
    # The host's TLS key in the secrets directory.
    users.users.nginx.extraGroups = [ secretsGroup ];
  };
}
