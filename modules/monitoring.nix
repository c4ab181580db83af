# The monitoring agent on a host: the OpenTelemetry Collector (contrib build, for its Sumo
# Logic exporter) or collectd with Sumo Logic's Python plugin, with the config nixstack
# renders. Secrets (the Sumo Logic endpoint URL, the database monitor password) never enter
# the config, the store or a unit's environment: systemd hands them to the collector as
# credentials (LoadCredential=, read as root from /var/lib/nixstack/secrets when the unit
# starts; the config reads /run/credentials/<unit>/NAME with `${file:...}`), and root writes
# collectd's included secrets file when collectd starts.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkIf mkOption types;
  cfg = config.nixstack.monitoring;
  collectdUser = config.services.collectd.user;

  # The same substitution as nixstack's lab does: each `"@PLACEHOLDER@"` of the template
  # becomes the secret file's content as a collectd string.
  writeCollectdSecrets = pkgs.writeShellScript "nixstack-collectd-secrets" ''
    set -euo pipefail
    shopt -u patsub_replacement 2>/dev/null || true
    text=$(< ${cfg.secretsTemplate})
    ${lib.concatStrings (
      lib.mapAttrsToList (placeholder: file: ''
        value=$(< ${lib.escapeShellArg file})
        value=''${value//\\/\\\\}
        value=''${value//\"/\\\"}
        text=''${text//\"${placeholder}\"/\"$value\"}
      '') cfg.secretInputs
    )}
    install -d -m 0750 -o ${collectdUser} ${dirOf cfg.secretsFile}
    umask 077
    printf '%s\n' "$text" > ${cfg.secretsFile}.tmp
    chown ${collectdUser} ${cfg.secretsFile}.tmp
    mv ${cfg.secretsFile}.tmp ${cfg.secretsFile}
  '';

  # Sumo Logic's collectd output plugin (PyPI), with its dependencies, for collectd's
  # embedded Python.
  sumologicCollectdMetrics = pkgs.python3Packages.buildPythonPackage rec {
    pname = "sumologic_collectd_metrics";
    version = "4.1.1";
    pyproject = true;
    src = pkgs.python3Packages.fetchPypi {
      inherit pname version;
      hash = "sha256-GREQapj899h53WM04jwgCmt9hKEHQUZE0SWyheppe78=";
    };
    build-system = [ pkgs.python3Packages.setuptools ];
    dependencies = [
      pkgs.python3Packages.requests
      pkgs.python3Packages.retry
    ];
    # It imports `collectd`, which exists only inside collectd.
    doCheck = false;
  };
  collectdPython = pkgs.python3.withPackages (_: [ sumologicCollectdMetrics ]);
in
{
  options.nixstack.monitoring = {
    enable = lib.mkEnableOption "the nixstack monitoring agent";

    agent = mkOption {
      type = types.enum [
        "otelcol"
        "collectd"
      ];
      default = "otelcol";
      description = "Which agent ships this host's metrics and logs.";
    };

    configFile = mkOption {
      type = types.path;
      example = lib.literalExpression "./otelcol.yaml";
      description = ''
        The rendered agent config: the collector's YAML, or collectd's configuration after the
        global settings NixOS writes itself (appended as {option}`services.collectd.extraConfig`).
      '';
    };

    validateConfig = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Check the config with the agent itself when the system is built. Off for both agents:
        the collector's config reads its secrets from the unit's credentials directory and
        collectd's includes the secrets file written at start, and neither exists in the build
        sandbox, so the agent would refuse every config there (nixstack's tests/build_checks.rs
        checks what `otelcol validate` checks, with the credentials in place).
      '';
    };

    credentials = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = {
        sumologic-endpoint = "/var/lib/nixstack/secrets/sumologic-endpoint";
      };
      description = ''
        otelcol: the unit's credentials, name → secret file (`LoadCredential=NAME:FILE`). The
        config reads each as `''${file:/run/credentials/opentelemetry-collector.service/NAME}`.
      '';
    };

    supplementaryGroups = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "nginx" ];
      description = ''
        otelcol: groups the collector's dynamic user joins, besides nixpkgs' `systemd-journal`,
        to read the logs it tails (nginx keeps /var/log/nginx `0750` and its logs `0640`).
      '';
    };

    secretsTemplate = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = lib.literalExpression "./collectd-secrets.conf.in";
      description = ''
        collectd: the config blocks that carry secrets, with `"@PLACEHOLDER@"` strings in their
        place; filled from {option}`nixstack.monitoring.secretInputs` into
        {option}`nixstack.monitoring.secretsFile` at start.
      '';
    };

    secretInputs = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = {
        "@SUMOLOGIC_URL@" = "/var/lib/nixstack/secrets/sumologic-endpoint";
      };
      description = "collectd: which secret file replaces which placeholder of the template.";
    };

    secretsFile = mkOption {
      type = types.str;
      default = "/run/collectd/secrets.conf";
      description = "collectd: where the filled template goes; the rendered config includes it.";
    };

    pythonModulePath = mkOption {
      type = types.str;
      default = "/etc/nixstack/collectd-python";
      description = "collectd: where the rendered config expects the Sumo Logic plugin's Python modules.";
    };
  };

  config = mkIf cfg.enable (
    lib.mkMerge [
      (mkIf (cfg.agent == "otelcol") {
        services.opentelemetry-collector = {
          enable = true;
          # The core distribution has no Sumo Logic exporter.
          package = lib.mkDefault pkgs.opentelemetry-collector-contrib;
          inherit (cfg) configFile;
          validateConfigFile = cfg.validateConfig;
        };
        systemd.services.opentelemetry-collector.serviceConfig = {
          # systemd reads each secret file as root and gives the dynamic user a private copy.
          LoadCredential = lib.mapAttrsToList (name: file: "${name}:${file}") cfg.credentials;
          SupplementaryGroups = cfg.supplementaryGroups;
        };
      })

      (mkIf (cfg.agent == "collectd") {
        assertions = [
          {
            assertion = lib.hasPrefix "/etc/" cfg.pythonModulePath;
            message = "nixstack.monitoring.pythonModulePath must be below /etc/ (it is linked through environment.etc).";
          }
        ];
        services.collectd = {
          enable = true;
          extraConfig = builtins.readFile cfg.configFile;
          validateConfig = cfg.validateConfig;
        };
        environment.etc.${lib.removePrefix "/etc/" cfg.pythonModulePath}.source = "${collectdPython}/${pkgs.python3.sitePackages}";
        systemd.services.collectd.serviceConfig.ExecStartPre = mkIf (cfg.secretsTemplate != null) [
          "+${writeCollectdSecrets}"
        ];
      })
    ]
  );
}
