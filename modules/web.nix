# The web role: nginx serving the static root and proxying to the app tier, behind the load
# balancers (TLS with the internal CA when the spec re-encrypts every hop). nixstack renders
# the complete nginx.conf; it is installed verbatim as `services.nginx.config`.
{
  config,
  lib,
  ...
}:
let
  inherit (lib) mkOption types;
  cfg = config.nixstack.web;
  secretsGroup = config.nixstack.base.secretsGroup;
in
{
  options.nixstack.web = {
    enable = lib.mkEnableOption "the nixstack web server (nginx)";

    nginxConfig = mkOption {
      type = types.path;
      example = lib.literalExpression "./nginx.conf";
      description = ''
        The rendered `nginx.conf`. NixOS writes `pid`, `error_log` and `daemon off;` in front of
        {option}`services.nginx.config`, so the rendered file leaves those three out on NixOS
        and carries its own `events` and `http` blocks.
      '';
    };

    root = mkOption {
      type = types.str;
      default = "/var/www";
      example = "/var/www/shop";
      description = "The static root nginx serves; created empty if missing, filled by the operator.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        # With `services.nginx.config` set NixOS silently drops virtual hosts, and with them any
        # `addSSL`/`forceSSL`/`onlySSL` choice: refuse instead of losing them quietly.
        assertion = config.services.nginx.virtualHosts == { };
        message = "nixstack.web installs a complete nginx.conf (services.nginx.config); services.nginx.virtualHosts would be ignored. Describe the site in the spec, or drop nixstack.web.";
      }
    ];

    services.nginx = {
      enable = true;
      config = builtins.readFile cfg.nginxConfig;
    };
    # The host certificate and key, and the internal CA for the app upstream.
    users.users.nginx.extraGroups = [ secretsGroup ];

    systemd.tmpfiles.rules = [ "d ${cfg.root} 0755 root root -" ];
  };
}
