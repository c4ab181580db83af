# Sample load-balancer role module for tests/nix_options.rs.
{ config, lib, ... }:
let
  cfg = config.nixstack.lb;
  inherit (lib) types;
in
{
  options.nixstack.lb = {
    enable = lib.mkEnableOption "the nixstack load balancer (HAProxy behind a keepalived VIP)";

    vip = lib.mkOption {
      type = types.str;
      example = "203.0.113.10/24";
      description = "The virtual IP address, with prefix length, that keepalived moves between load balancers.";
    };

    interface = lib.mkOption {
      type = types.str;
      default = "eth0";
      description = "The interface that carries the virtual IP.";
    };

    state = lib.mkOption {
      type = types.enum [ "MASTER" "BACKUP" ];
      default = "BACKUP";
      description = "The VRRP state this host starts in.";
    };

    priority = lib.mkOption {
      type = types.ints.u8;
      default = 100;
      description = "The VRRP priority; the highest live priority holds the virtual IP.";
    };

    virtualRouterId = lib.mkOption {
      type = types.ints.between 1 255;
      default = 51;
      description = "The VRRP router id shared by both load balancers.";
    };

    peers = lib.mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Unicast VRRP peers.";
    };

    statsPort = lib.mkOption {
      type = types.port;
      default = 8404;
      description = "The port of the HAProxy stats and metrics endpoint.";
    };

    haproxyConfig = lib.mkOption {
      type = types.lines;
      description = "The HAProxy configuration rendered by nixstack.";
    };

    backends = lib.mkOption {
      type = types.attrsOf (types.submodule {
        options = {
          address = lib.mkOption { type = types.str; };
          port = lib.mkOption { type = types.port; };
        };
      });
      default = { };
      description = "The web backends, by host name.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.vip != "";
        message = "nixstack.lb.vip must be set";
      }
    ];

    services.haproxy = {
      enable = true;
      config = cfg.haproxyConfig;
    };

    services.keepalived = {
      enable = true;
      vrrpInstances.nixstack = {
        inherit (cfg) interface state priority virtualRouterId;
        virtualIps = [ { addr = cfg.vip; } ];
        unicastPeers = cfg.peers;
      };
    };

    networking.firewall.allowedTCPPorts = [
      80
      443
      cfg.statsPort
    ];

    boot.kernel.sysctl."net.ipv4.ip_nonlocal_bind" = 1;

    systemd.services.haproxy.serviceConfig = {
      Restart = lib.mkForce "always";
      ProtectSystem = "strict";
    };
  };
}
