# The host firewall: the nftables ruleset nixstack renders from the Topology's allow-matrix
# (default drop, SSH from the admin networks only), installed verbatim as
# `networking.nftables.ruleset`. The lab loads the same text with `nft -f`.
{
  config,
  lib,
  ...
}:
let
  inherit (lib) mkOption types;
  cfg = config.nixstack.firewall;
in
{
  options.nixstack.firewall = {
    enable = lib.mkEnableOption "the nixstack nftables firewall";

    ruleset = mkOption {
      type = types.path;
      example = lib.literalExpression "./nftables.nft";
      description = ''
        The rendered nftables ruleset of this host, installed verbatim. It flushes and replaces
        the whole ruleset, so nothing else on the host may add nftables tables.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = !config.networking.firewall.enable;
        message = "nixstack.firewall owns the host firewall: networking.firewall.enable must be false (it would add NixOS's own rules beside the rendered ruleset).";
      }
    ];

    networking.firewall.enable = false;
    networking.nftables = {
      enable = true;
      # Reloads replace the ruleset instead of appending to the chains already loaded.
      flushRuleset = true;
      # `checkRuleset` (on by default) runs `nft --check` on this text when the system is
      # built, so a ruleset nft rejects fails the build, not the boot.
      ruleset = builtins.readFile cfg.ruleset;
    };
  };
}
