# The db role: a MariaDB Galera node. The host file sets NixOS's own
# `services.mysql.galeraCluster` (the unit plumbing for Galera) and `services.mysql.settings`
# (durable InnoDB settings, TLS for clients and replication) from the same key/value data the
# lab's my.cnf is rendered from; this module turns the server on, gives it the secrets, and
# creates the application's databases and password users.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkDefault mkOption types;
  cfg = config.nixstack.db;
  mysql = config.services.mysql;
  galera = mysql.galeraCluster;
  inherit (config.nixstack.base) secretsDir secretsGroup;

  # Passwords are read from the secrets directory when the unit runs; generated passwords are
  # alphanumeric, and anything that could break out of the SQL string is refused.
  ensureUser =
    user:
    let
      account = "'${user.name}'@'${user.host}'";
      on = if user.database == null then "*.*" else "${user.database}.*";
    in
    ''
      password=$(tr -d '\n' < ${lib.escapeShellArg "${secretsDir}/db-${user.name}.password"})
      case "$password" in
        "" | *"'"* | *\\*)
          echo "${secretsDir}/db-${user.name}.password is missing, empty, or holds a quote or backslash" >&2
          exit 1
          ;;
      esac
      mariadb <<SQL
      CREATE USER IF NOT EXISTS ${account} IDENTIFIED BY '$password';
      ALTER USER ${account} IDENTIFIED BY '$password'${lib.optionalString user.requireTls " REQUIRE SSL"};
      GRANT ${user.privileges} ON ${on} TO ${account};
      SQL
    '';
in
{
  options.nixstack.db = {
    enable = lib.mkEnableOption "the nixstack database node (MariaDB Galera)";

    package = lib.mkPackageOption pkgs "mariadb" { };

    databases = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "shop" ];
      description = "Databases to create (on every node; Galera replicates them).";
    };

    users = mkOption {
      default = [ ];
      description = ''
        Database accounts with a password, read at runtime from `db-<name>.password` in
        {option}`nixstack.base.secretsDir`: the application's users and the monitoring
        agent's status account.
      '';
      type = types.listOf (
        types.submodule {
          options = {
            name = mkOption {
              type = types.strMatching "[A-Za-z0-9_]+";
              description = "User name.";
            };
            database = mkOption {
              type = types.nullOr (types.strMatching "[A-Za-z0-9_]+");
              default = null;
              description = "The database the privileges are on; `null` for all (`*.*`).";
            };
            privileges = mkOption {
              type = types.str;
              default = "ALL PRIVILEGES";
              example = "PROCESS, REPLICATION CLIENT";
              description = "What the user may do there (the GRANT privilege list).";
            };
            host = mkOption {
              type = types.str;
              default = "localhost";
              example = "10.10.0.0/255.255.255.0";
              description = "Where the user may connect from (a MariaDB host pattern).";
            };
            requireTls = mkOption {
              type = types.bool;
              default = false;
              description = "Whether the user may only connect over TLS (never for socket-only users).";
            };
          };
        }
      );
    };

    bootstrapNewCluster = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Start this node as a new cluster (`gcomm://`, no peers). Set it on one node, once, for
        the very first start of a cluster (`nixstack install` does this for the spec's
        bootstrap node), then switch back: a node that keeps it forms a cluster of its own on
        every restart.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = galera.localAddress != "" && galera.nodeAddresses != [ ];
        message = "nixstack.db needs services.mysql.galeraCluster.localAddress and services.mysql.galeraCluster.nodeAddresses (the host file sets them from the spec).";
      }
      {
        assertion = lib.elem galera.localAddress galera.nodeAddresses;
        message = "services.mysql.galeraCluster.nodeAddresses must include this node's services.mysql.galeraCluster.localAddress.";
      }
    ];

    services.mysql = {
      enable = true;
      package = mkDefault cfg.package;
      galeraCluster.enable = true;
      galeraCluster.clusterAddress = lib.mkIf cfg.bootstrapNewCluster (lib.mkForce "gcomm://");
      ensureDatabases = cfg.databases;
    };
    # TLS certificate and key for clients and replication.
    users.users.${mysql.user}.extraGroups = [ secretsGroup ];
    # What MariaDB's state transfer scripts call (rsync SST through stunnel, mariabackup
    # through socat), as in NixOS's own Galera test.
    systemd.services.mysql.path = [
      pkgs.bash
      pkgs.gawk
      pkgs.gnutar
      pkgs.gzip
      pkgs.inetutils
      pkgs.iproute2
      pkgs.netcat
      pkgs.procps
      pkgs.pv
      pkgs.rsync
      pkgs.socat
      pkgs.stunnel
      pkgs.which
    ];

    systemd.services.nixstack-db-users = lib.mkIf (cfg.users != [ ]) {
      description = "nixstack database users";
      wantedBy = [ "multi-user.target" ];
      requires = [ "mysql.service" ];
      after = [ "mysql.service" ];
      path = [ mysql.package ];
      script = ''
        set -eu
        ${lib.concatMapStrings ensureUser cfg.users}
      '';
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        # A joining node refuses queries until it is synced: try again.
        Restart = "on-failure";
        RestartSec = "5s";
        # The mysql account reaches the server over its socket with unix_socket auth.
        User = mysql.user;
        Group = mysql.group;
        SupplementaryGroups = [ secretsGroup ];
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        PrivateNetwork = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectControlGroups = true;
        RestrictAddressFamilies = [ "AF_UNIX" ];
        CapabilityBoundingSet = "";
        SystemCallArchitectures = "native";
        UMask = "0077";
      };
    };
  };
}
