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
in
{
  options.nixstack.web = {
    enable = lib.mkEnableOption "the nixstack web server (nginx)";

    root = mkOption {
      type = types.str;
      default = "/var/www";
      example = "/var/www/shop";
      description = "The static root nginx serves; created empty if missing, filled by the operator.";
    };

    static = mkOption {
      type = types.nullOr types.package;
      default = null;
      description = ''
        The application's static assets (`[web] static`, the overlay's `nixstack-static`),
        linked at /etc/nixstack/static, where the rendered nginx.conf serves them from: files
        under `assets/` with `Cache-Control: public, max-age=31536000, immutable`, the others
        revalidated, every other path proxied to the app.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    # nginx itself (modules/nginx.nix) serves this root; nixstack.nginx is set on every web host.
    systemd.tmpfiles.rules = [ "d ${cfg.root} 0755 root root -" ];
    # A link into the store: the new system's assets replace the old ones at activation.
    environment.etc."nixstack/static" = lib.mkIf (cfg.static != null) { source = cfg.static; };
  };
}
