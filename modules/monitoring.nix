# The monitoring agent on a host: the OpenTelemetry Collector (contrib build, for its Sumo
# Logic exporter) or collectd, with the config nixstack renders. The Sumo Logic endpoint URL
# is a secret: the config reads it from /var/lib/nixstack/secrets at runtime.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkDefault mkIf mkOption types;
  cfg = config.nixstack.monitoring;
  secretsGroup = config.nixstack.base.secretsGroup;
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
        The rendered agent config: the collector's YAML, or collectd's plugin configuration
        (NixOS writes collectd's global settings itself and appends this text).
      '';
    };

    validateConfig = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Check the config with the agent itself when the system is built
        (`otelcol validate`, `collectd -t`). The build sandbox has no runtime secrets, so a
        config must not need a secret's value to validate.
      '';
    };
  };

  config = mkIf cfg.enable (
    lib.mkMerge [
      (mkIf (cfg.agent == "otelcol") {
        services.opentelemetry-collector = {
          enable = true;
          # The core distribution has no Sumo Logic exporter.
          package = mkDefault pkgs.opentelemetry-collector-contrib;
          inherit (cfg) configFile;
          validateConfigFile = cfg.validateConfig;
        };
        # The endpoint secret; the unit runs with a dynamic user.
        systemd.services.opentelemetry-collector.serviceConfig.SupplementaryGroups = [ secretsGroup ];
      })

      (mkIf (cfg.agent == "collectd") {
        services.collectd = {
          enable = true;
          extraConfig = builtins.readFile cfg.configFile;
          validateConfig = cfg.validateConfig;
        };
        users.users.collectd.extraGroups = [ secretsGroup ];
      })
    ]
  );
}
