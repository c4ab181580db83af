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

  # With `skip_name_resolve` MariaDB matches a client by its address only: an account whose
  # host pattern is a name could never log in. `localhost` is the socket's name.
  skipNameResolve = mysql.settings.mysqld.skip_name_resolve or false;
  addressPattern = host: host == "localhost" || builtins.match "[0-9.%_]+(/[0-9.]+)?" host != null;
  namedUsers = lib.filter (user: !addressPattern user.host) cfg.users;

  # `stunnel` for wsrep_sst_rsync: Mozilla's options before the configuration the script
  # writes (sst-stunnel.sh says why). The script finds stunnel on PATH (`commandex stunnel` on
  # the donor, a bare `stunnel` on the joiner), and nixpkgs' mysql module puts pkgs.stunnel on
  # the unit's path itself, so this one goes first (mkBefore).
  sstStunnel = pkgs.writeShellScriptBin "stunnel" ''
    exec ${pkgs.runtimeShell} ${./sst-stunnel.sh} ${pkgs.stunnel}/bin/stunnel ${cfg.sstStunnelOptions} "$@"
  '';

  backupCfg = cfg.backup;
  restic = backupCfg.target == "restic";
  # mariabackup and the server's socket (nixpkgs' mysql module: /run/mysqld/mysqld.sock).
  backupStaging = "/var/lib/nixstack-db-backup";

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
              description = ''
                Where the user may connect from (a MariaDB host pattern): `localhost` for the
                socket, or an address pattern (`10.10.0.31`, `10.10.0.0/255.255.255.0`,
                `10.10.0.%`), never a name while `skip_name_resolve` is set.
              '';
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

    backup = {
      enable = lib.mkEnableOption "scheduled physical backups of this node (mariabackup), the nixstack-db-backup unit and timer";
      schedule = mkOption {
        type = types.str;
        default = "daily";
        example = "*-*-* 03:00:00";
        description = "When to back up (a systemd calendar event, `OnCalendar=`).";
      };
      keep = mkOption {
        type = types.ints.between 1 1000;
        default = 7;
        description = "How many backups to keep; older ones are removed after each successful backup.";
      };
      target = mkOption {
        type = types.enum [
          "local"
          "restic"
        ];
        default = "local";
        description = "`local`: a dated directory per backup under {option}`path`; `restic`: a snapshot in {option}`repository`.";
      };
      path = mkOption {
        type = types.str;
        default = "/var/backup/nixstack-db";
        description = "The directory of dated backups (`target = \"local\"`).";
      };
      repository = mkOption {
        type = types.str;
        default = "";
        example = "sftp:backup@10.0.0.9:/srv/restic/shop";
        description = ''
          The restic repository (`target = "restic"`). Its password is read from
          `db-backup-restic.password` in {option}`nixstack.base.secretsDir` with
          `--password-file` (`RESTIC_PASSWORD_FILE`): never in the store or the environment.
        '';
      };
    };

    opensslConfig = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = ''
        An OpenSSL configuration given to MariaDB as `OPENSSL_CONF`: its `system_default`
        section limits the TLS groups of the client port and of Galera's replication socket,
        which have no option for them (nixstack renders Mozilla's intermediate groups). Not a
        secret: it lands in the store.
      '';
    };

    sstStunnelOptions = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = ''
        stunnel options (protocols, ciphers, curves) put before the configuration MariaDB's
        rsync state snapshot transfer writes for stunnel, through a `stunnel` wrapper first on
        the mysql unit's path (nixstack renders Mozilla's intermediate). stunnel sets its own
        ciphers and curves, so {option}`opensslConfig` cannot limit them. Not a secret: it
        lands in the store.
      '';
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
        assertion = !skipNameResolve || namedUsers == [ ];
        message = "nixstack.db.users ${
          lib.concatMapStringsSep ", " (user: "${user.name}@${user.host}") namedUsers
        }: with services.mysql.settings.mysqld.skip_name_resolve MariaDB matches clients by address only; use localhost or an address/netmask pattern.";
      }
      {
        assertion = !backupCfg.enable || backupCfg.target != "restic" || backupCfg.repository != "";
        message = "nixstack.db.backup.target = \"restic\" needs nixstack.db.backup.repository.";
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
      # nixpkgs declares this option with `default = lib.literalExpression "pkgs.mariadb-galera"`
      # (an attribute set, not a package: the module's `wsrep_provider` interpolation of it fails
      # to evaluate), so a node must set it, as NixOS's own Galera test does.
      galeraCluster.package = mkDefault pkgs.mariadb-galera;
      galeraCluster.clusterAddress = lib.mkIf cfg.bootstrapNewCluster (lib.mkForce "gcomm://");
      ensureDatabases = cfg.databases;
    };
    # TLS certificate and key for clients and replication.
    users.users.${mysql.user}.extraGroups = [ secretsGroup ];
    systemd.services.mysql.environment = lib.mkIf (cfg.opensslConfig != null) {
      OPENSSL_CONF = "${cfg.opensslConfig}";
    };
    # What MariaDB's state transfer scripts call (rsync SST through stunnel, mariabackup
    # through socat), as in NixOS's own Galera test; the stunnel wrapper first.
    systemd.services.mysql.path = lib.mkMerge [
      (lib.mkIf (cfg.sstStunnelOptions != null) (lib.mkBefore [ sstStunnel ]))
      [
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
      ]
    ];

    # Scheduled backups (docs/galera.md, "Backups"): the script in db-backup.sh, shipped verbatim
    # and run the same way in the lab and by tests/galera_backup.rs. mariabackup connects as the
    # mysql account over the socket: nixpkgs' mysql module creates it on the first start
    # (`CREATE USER 'mysql'@'localhost' IDENTIFIED WITH unix_socket` and `GRANT ALL PRIVILEGES ON
    # *.*`, nixos/modules/services/databases/mysql.nix), and as that user it reads the datadir.
    systemd.tmpfiles.rules = lib.mkIf (backupCfg.enable && !restic) [
      "d ${backupCfg.path} 0700 ${mysql.user} ${mysql.group} - -"
    ];
    systemd.services.nixstack-db-backup = lib.mkIf backupCfg.enable {
      description = "nixstack database backup (mariabackup)";
      requires = [ "mysql.service" ];
      after = [ "mysql.service" ];
      startAt = backupCfg.schedule;
      # coreutils, findutils and grep are on every unit's default path.
      path = [ mysql.package ] ++ lib.optional restic pkgs.restic;
      environment = {
        NIXSTACK_BACKUP_TARGET = backupCfg.target;
        NIXSTACK_BACKUP_KEEP = toString backupCfg.keep;
        NIXSTACK_BACKUP_PATH = if restic then backupStaging else backupCfg.path;
        NIXSTACK_BACKUP_SOCKET = "/run/mysqld/mysqld.sock";
        NIXSTACK_BACKUP_DEFAULTS_FILE = "/etc/my.cnf";
        NIXSTACK_BACKUP_USER = mysql.user;
      }
      // (
        if restic then
          {
            NIXSTACK_BACKUP_REPOSITORY = backupCfg.repository;
            # A path, not the password: restic reads the file.
            NIXSTACK_BACKUP_PASSWORD_FILE = "${secretsDir}/db-backup-restic.password";
            RESTIC_CACHE_DIR = "/var/cache/nixstack-db-backup";
          }
        else
          { }
      );
      serviceConfig = {
        Type = "oneshot";
        ExecStart = "${pkgs.bash}/bin/bash ${./db-backup.sh}";
        User = mysql.user;
        Group = mysql.group;
        SupplementaryGroups = [ secretsGroup ];
        StateDirectory = "nixstack-db-backup";
        StateDirectoryMode = "0700";
        CacheDirectory = "nixstack-db-backup";
        Nice = 10;
        IOSchedulingClass = "idle";
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ReadWritePaths = lib.optional (!restic) backupCfg.path;
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        UMask = "0077";
      };
    };

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
