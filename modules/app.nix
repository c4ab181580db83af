# The app role: the application as a hardened systemd service with a dynamic user, speaking
# plain HTTP on loopback behind nginx (modules/nginx.nix terminates the web tier's TLS). Its
# environment and credentials are the contract of docs/app.md, rendered by nixstack, the same
# values the lab starts the app with. Secrets reach it as systemd credentials
# (`LoadCredential=`, read in $CREDENTIALS_DIRECTORY), never in the environment or the store.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkDefault mkOption types;
  cfg = config.nixstack.app;
  program = name: if name == null then lib.getExe cfg.package else "${cfg.package}/bin/${name}";

  # What the app's unit and its migration share, declared once: the user, the environment,
  # the credentials and the hardening (docs/app.md).
  common = {
    inherit (cfg) environment;
    wants = [ "network-online.target" ];
    after = [ "network-online.target" ];
    serviceConfig = {
      DynamicUser = true;
      LoadCredential = lib.mapAttrsToList (name: path: "${name}:${path}") cfg.credentials;
      StateDirectory = "nixstack-app";
      AmbientCapabilities = lib.optional (cfg.port < 1024) "CAP_NET_BIND_SERVICE";
      # `""` empties the bounding set: the app keeps no capability at all.
      CapabilityBoundingSet = if cfg.port < 1024 then [ "CAP_NET_BIND_SERVICE" ] else "";
      NoNewPrivileges = true;
      ProtectSystem = "strict";
      ProtectHome = true;
      PrivateTmp = true;
      PrivateDevices = true;
      ProtectClock = true;
      ProtectHostname = true;
      ProtectKernelTunables = true;
      ProtectKernelModules = true;
      ProtectKernelLogs = true;
      ProtectControlGroups = true;
      ProtectProc = "invisible";
      RestrictAddressFamilies = [
        "AF_UNIX"
        "AF_INET"
        "AF_INET6"
      ];
      RestrictNamespaces = true;
      RestrictRealtime = true;
      RestrictSUIDSGID = true;
      LockPersonality = true;
      # An interpreter with a JIT needs writable executable memory: override in local.nix.
      MemoryDenyWriteExecute = mkDefault true;
      SystemCallArchitectures = "native";
      SystemCallFilter = [
        "@system-service"
        "~@privileged"
        "~@resources"
      ];
      UMask = "0077";
    };
  };
in
{
  options.nixstack.app = {
    enable = lib.mkEnableOption "the nixstack application service";

    package = lib.mkPackageOption pkgs "nixstack-demo-app" {
      extraDescription = "The generated flake provides it through its overlay.";
    };

    command = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "The program in the package's `bin/` directory to run; `null`: the package's `meta.mainProgram` (`lib.getExe`).";
    };

    port = mkOption {
      type = types.port;
      default = 8080;
      description = "The port the application listens on (`PORT` in its environment).";
    };

    environment = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = {
        APP_ENV = "production";
        PORT = "8000";
      };
      description = ''
        Environment of the service: the spec's `app.env` plus what nixstack derives (`HOST`,
        `PORT`, `DATABASE_HOSTS` in preference order, `DATABASE_NAME`, `DATABASE_USER`, ...;
        docs/app.md). Never put a secret here: it would land in the world-readable store; use
        {option}`nixstack.app.credentials`.
      '';
    };

    credentials = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = {
        database-password = "/var/lib/nixstack/secrets/db-shop.password";
      };
      description = ''
        Files handed to the service as systemd credentials (`LoadCredential=NAME:PATH`): the app
        reads `$CREDENTIALS_DIRECTORY/NAME`, whatever the file's owner, while the dynamic user
        holds no access to {option}`nixstack.base.secretsDir` itself.
      '';
    };

    migrate = mkOption {
      type = types.nullOr (types.listOf types.str);
      default = null;
      example = [
        "shop-server"
        "migrate"
      ];
      description = ''
        The schema migration: a program in the package's `bin/` and its arguments, run by the
        oneshot unit `nixstack-app-migrate` with the service's user, environment and
        credentials. `nixstack deploy` starts it on one app host before any app host switches;
        `null`: no migration unit.
      '';
    };

    healthPath = mkOption {
      type = types.str;
      default = "/healthz";
      description = "HTTP path that answers 200 when the app and its database work; deploy gates on it.";
    };
  };

  config = lib.mkIf cfg.enable {
    systemd.services.nixstack-app = common // {
      description = "nixstack application";
      wantedBy = [ "multi-user.target" ];
      serviceConfig = common.serviceConfig // {
        ExecStart = program cfg.command;
        Restart = "on-failure";
        RestartSec = "2s";
        # A stop is graceful (docs/app.md, "Rollout"): SIGTERM, and the app answers what it
        # has in flight; no request lives longer than the web tier's 30s proxy_read_timeout.
        KillSignal = "SIGTERM";
        TimeoutStopSec = "35s";
      };
    };

    # The schema migration: started by `nixstack deploy` on one app host before any app host
    # switches (never at boot, never by an activation), so it runs once per deploy.
    systemd.services.nixstack-app-migrate = lib.mkIf (cfg.migrate != null) (
      common
      // {
        description = "nixstack application schema migration";
        restartIfChanged = false;
        stopIfChanged = false;
        serviceConfig = common.serviceConfig // {
          Type = "oneshot";
          ExecStart = lib.escapeShellArgs ([ (program (builtins.head cfg.migrate)) ] ++ builtins.tail cfg.migrate);
        };
      }
    );
  };
}
