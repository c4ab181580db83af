# The monitoring agent on a host: the OpenTelemetry Collector (contrib build, for its Sumo
# Logic exporter) or collectd with Sumo Logic's Python plugin, with the config nixstack
# renders. Secrets (the Sumo Logic endpoint URL, the database monitor password) never enter
# the config or the store: they are read from /var/lib/nixstack/secrets by root when the
# agent starts, into the collector's environment or into collectd's included secrets file.
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

  # systemd reads environment files itself (as root), right before it starts the collector.
  inherit (cfg) environmentFile;
  writeEnvironment = pkgs.writeShellScript "nixstack-otelcol-environment" ''
    set -euo pipefail
    install -d -m 0700 ${dirOf environmentFile}
    umask 077
    {
    ${lib.concatStrings (
      lib.mapAttrsToList (variable: file: ''
        value=$(< ${lib.escapeShellArg file})
        case "$value" in
          *[\"\\\'$'\n']*) echo "${file} holds a quote, backslash or newline" >&2; exit 1 ;;
        esac
        printf '%s="%s"\n' ${variable} "$value"
      '') cfg.secretEnvironment
    )}
    } > ${environmentFile}.tmp
    mv ${environmentFile}.tmp ${environmentFile}
  '';

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
      default = cfg.agent == "otelcol";
      defaultText = lib.literalExpression ''config.nixstack.monitoring.agent == "otelcol"'';
      description = ''
        Check the config with the agent itself when the system is built. The collector
        validates with its secret variables unset; collectd's config includes the secrets file
        written at start and imports the Python plugin from a runtime path, so `collectd -t`
        cannot judge it in the build sandbox.
      '';
    };

    secretEnvironment = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = {
        SUMOLOGIC_ENDPOINT = "/var/lib/nixstack/secrets/sumologic-endpoint";
      };
      description = "otelcol: environment variables of the collector, each read from a secret file at start.";
    };

    environmentFile = mkOption {
      type = types.str;
      default = "/run/nixstack-env/opentelemetry-collector.env";
      internal = true;
      description = "otelcol: where the variables of {option}`nixstack.monitoring.secretEnvironment` are written for systemd.";
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
        systemd.services.opentelemetry-collector.serviceConfig = mkIf (cfg.secretEnvironment != { }) {
          # `+`: runs as root (the collector's own user is dynamic and reads no secret).
          ExecStartPre = [ "+${writeEnvironment}" ];
          EnvironmentFile = [ "-${environmentFile}" ];
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
