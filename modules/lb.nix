# The load balancer role: HAProxy terminating TLS for the stack's domain and re-encrypting to
# the web tier, and keepalived moving the virtual IP between the load balancers. Both configs
# are rendered by nixstack and installed verbatim; the lab runs the same text.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkIf mkOption types;
  cfg = config.nixstack.lb;
  secretsGroup = config.nixstack.base.secretsGroup;
  keepalived = config.services.keepalived;
  # The rendered file names curl as `@curl@` (src/render/keepalived.rs): the store path puts
  # curl in the config's closure, so the track script exists wherever the config does.
  installedKeepalivedConfig = pkgs.replaceVars cfg.keepalivedConfig { curl = lib.getExe pkgs.curl; };
in
{
  options.nixstack.lb = {
    enable = lib.mkEnableOption "the nixstack load balancer (HAProxy and keepalived)";

    haproxyConfig = mkOption {
      type = types.path;
      example = lib.literalExpression "./haproxy.cfg";
      description = ''
        The rendered `haproxy.cfg`, installed verbatim as {option}`services.haproxy.config`.
        NixOS puts a `global` section with the master socket in front of it, which HAProxy
        merges with the file's own `global` section.
      '';
    };

    keepalivedConfig = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = lib.literalExpression "./keepalived.conf";
      description = ''
        The rendered `keepalived.conf` (VRRP with unicast peers and a check that gives up the
        virtual IP when HAProxy is down). `null` puts {option}`nixstack.lb.vip` on
        {option}`nixstack.lb.vipInterface` statically instead: a single load balancer has
        nothing to fail over to.
      '';
    };

    installedKeepalivedConfig = mkOption {
      type = types.nullOr types.path;
      default = null;
      readOnly = true;
      internal = true;
      description = ''
        The file keepalived runs: {option}`nixstack.lb.keepalivedConfig` with its `@curl@`
        replaced by curl's store path. The flake's `keepalived --config-test` checks this file.
      '';
    };

    vip = mkOption {
      type = types.str;
      example = "203.0.113.10";
      description = "The virtual IP that clients connect to.";
    };

    vipInterface = mkOption {
      type = types.str;
      default = "eth1";
      description = "The interface on the public network, which carries the virtual IP.";
    };

    vipPrefixLength = mkOption {
      type = types.ints.between 0 32;
      default = 32;
      description = "Prefix length of the virtual IP when it is configured statically.";
    };

    acme = mkOption {
      default = null;
      description = ''
        Obtain the public certificate from Let's Encrypt (HTTP-01). lego answers the challenge
        on `challengeAddress:challengePort`, where HAProxy sends `/.well-known/acme-challenge/`, and
        writes `/var/lib/acme/<domain>/full.pem` (certificate chain and key), which HAProxy
        serves. `null` when the certificate is provided as a secret instead.
      '';
      type = types.nullOr (
        types.submodule {
          options = {
            domain = mkOption {
              type = types.str;
              example = "shop.example.com";
              description = "The domain the certificate is for.";
            };
            email = mkOption {
              type = types.nullOr types.str;
              default = null;
              example = "ops@example.com";
              description = "Account email at the ACME server (expiry notices go there); required.";
            };
            challengeAddress = mkOption {
              type = types.str;
              default = "127.0.0.1";
              description = "Address of lego's HTTP-01 server, where haproxy.cfg sends the challenge.";
            };
            challengePort = mkOption {
              type = types.port;
              default = 8402;
              description = "Port of lego's HTTP-01 server, where haproxy.cfg sends the challenge.";
            };
          };
        }
      );
    };
  };

  config = mkIf cfg.enable (
    lib.mkMerge [
      {
        # The backup balancer's HAProxy binds the virtual IP before keepalived moves it there.
        boot.kernel.sysctl."net.ipv4.ip_nonlocal_bind" = 1;

        services.haproxy = {
          enable = true;
          config = builtins.readFile cfg.haproxyConfig;
        };
        # Host certificate, internal CA and (when provided) the public certificate.
        users.users.haproxy.extraGroups = [ secretsGroup ];
      }

      (mkIf (cfg.keepalivedConfig != null) {
        # The NixOS keepalived module generates its own keepalived.conf from options; nixstack
        # renders the complete file (the lab runs it unchanged), so the unit keeps NixOS's
        # plumbing (boot delay timer, restart, reload) and only its command line points at our
        # file, with the same flags NixOS uses.
        services.keepalived.enable = true;
        systemd.services.keepalived.serviceConfig.ExecStart = lib.mkForce "${lib.getExe keepalived.package} -f ${installedKeepalivedConfig} -p /run/keepalived.pid";
        nixstack.lb.installedKeepalivedConfig = installedKeepalivedConfig;
      })

      (mkIf (cfg.keepalivedConfig == null) {
        networking.interfaces.${cfg.vipInterface}.ipv4.addresses = [
          {
            address = cfg.vip;
            prefixLength = cfg.vipPrefixLength;
          }
        ];
      })

      (mkIf (cfg.acme != null) {
        assertions = [
          {
            assertion = cfg.acme.email != null;
            message = "nixstack.lb.acme.email must be set to register with the ACME server (the spec's lb.tls.acme_email).";
          }
        ];
        security.acme = {
          acceptTerms = true;
          certs.${cfg.acme.domain} = {
            inherit (cfg.acme) email;
            listenHTTP = "${cfg.acme.challengeAddress}:${toString cfg.acme.challengePort}";
            group = config.services.haproxy.group;
            reloadServices = [ "haproxy.service" ];
          };
        };
        # `acme-<domain>.service` puts a self-signed certificate in place until the first
        # order succeeds, so HAProxy can start (and answer the challenge) before it.
        systemd.services.haproxy = {
          wants = [ "acme-${cfg.acme.domain}.service" ];
          after = [ "acme-${cfg.acme.domain}.service" ];
        };
      })
    ]
  );
}
