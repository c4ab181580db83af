# What every nixstack host has: admin access over SSH with keys only, a deploy user that
# `nixstack deploy` can copy closures to and activate with, the runtime secrets directory,
# a boot loader and root file system (a documented default that a disko layout or
# `local.nix` replaces), and no NixOS iptables firewall (nixstack owns the firewall: see
# firewall.nix).
{
  config,
  lib,
  ...
}:
let
  inherit (lib) mkDefault mkIf mkOption types;
  cfg = config.nixstack.base;

  # The ESP holds the boot loader and kernels: readable by root only.
  espOptions = [
    "fmask=0077"
    "dmask=0077"
  ];
in
{
  options.nixstack.base = {
    enable = lib.mkEnableOption "the nixstack base configuration (SSH, deploy user, secrets directory, boot defaults)";

    deployUser = mkOption {
      type = types.str;
      default = "deploy";
      example = "ops";
      description = ''
        User that `nixstack deploy` logs in as. It is in `wheel`, may use `sudo` without a
        password (it has none: `users.mutableUsers` is off), and is a trusted Nix user so that
        `nix copy --to ssh-ng://` can add unsigned closures to the store.
      '';
    };

    sshKeys = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHqF3kTCNSNVxz7AbnQ3dMp6Hc1Y0ko7mRnUo3d0oG1x ops@example" ];
      description = ''
        Public SSH keys allowed to log in as {option}`nixstack.base.deployUser` and as
        `root` (key only, never a password). At least one is required: without it nobody
        could log in to the host.
      '';
    };

    bootLoader = mkOption {
      type = types.enum [
        "systemd-boot"
        "grub"
      ];
      default = "systemd-boot";
      example = "grub";
      description = ''
        Boot loader. `systemd-boot` expects an EFI system partition labelled `ESP` on `/boot`;
        `grub` boots BIOS machines from {option}`nixstack.base.disk`. nixstack picks the one
        that matches the host's image variant (`raw`/`qemu` images are BIOS images).
      '';
    };

    disk = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/dev/sda";
      description = ''
        The disk the host installs to (the spec's `disk`): GRUB's boot device, and the disk a
        generated disko layout partitions.
      '';
    };

    secretsDir = mkOption {
      type = types.str;
      default = "/var/lib/nixstack/secrets";
      readOnly = true;
      description = ''
        Where the runtime secrets live: uploaded by `nixstack deploy` before activation, never
        through the Nix store (it is world-readable). Every rendered config names files here.
      '';
    };

    secretsGroup = mkOption {
      type = types.str;
      default = "nixstack-secrets";
      readOnly = true;
      description = ''
        Group that may read {option}`nixstack.base.secretsDir`. The role modules add the
        daemons that read a certificate, key or password to it.
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.sshKeys != [ ];
        message = "nixstack.base.sshKeys is empty: with users.mutableUsers = false and no passwords, nobody could log in to ${config.networking.hostName}. Add `ssh_keys` to the spec's [stack] section.";
      }
      {
        assertion = cfg.deployUser != "root";
        message = "nixstack.base.deployUser must not be root: root logs in with the same keys already, the deploy user is an ordinary wheel user.";
      }
      {
        assertion = config.networking.hostName != "";
        message = "networking.hostName must be set: nixstack names hosts, certificates and Galera nodes after it.";
      }
      {
        assertion = cfg.bootLoader != "grub" || cfg.disk != null;
        message = "nixstack.base.bootLoader = \"grub\" needs nixstack.base.disk (the spec's `disk`) to install GRUB to.";
      }
    ];

    # Addresses are static and come from the spec (the host file sets
    # `networking.interfaces.<name>.ipv4.addresses`). The interface names the rendered configs
    # use are the kernel's classic ones (eth0 private, eth1 public on load balancers), which
    # follow the cards' probe order: a host whose MACs the spec gives names its cards priv0
    # and pub0 by permanent MAC instead (`systemd.network.links` in the host file).
    networking.useDHCP = mkDefault false;
    networking.usePredictableInterfaceNames = mkDefault false;

    # nixstack renders an nftables ruleset per host (firewall.nix); NixOS's own firewall must
    # stay off, also on hosts the spec leaves without a firewall, or it would drop the
    # traffic the stack needs.
    networking.firewall.enable = mkDefault false;

    services.openssh = {
      enable = true;
      # The nftables ruleset decides who reaches port 22 (the admin networks only).
      openFirewall = false;
      settings = {
        PasswordAuthentication = false;
        KbdInteractiveAuthentication = false;
        PermitRootLogin = "prohibit-password";
        X11Forwarding = false;
      };
    };

    users.mutableUsers = mkDefault false;
    users.users.${cfg.deployUser} = {
      isNormalUser = true;
      description = "nixstack deploy";
      extraGroups = [ "wheel" ];
      openssh.authorizedKeys.keys = cfg.sshKeys;
    };
    users.users.root.openssh.authorizedKeys.keys = cfg.sshKeys;
    users.groups.${cfg.secretsGroup} = { };

    # Activation needs root: the deploy user has no password to type.
    security.sudo.wheelNeedsPassword = false;

    nix.settings = {
      trusted-users = [
        "root"
        cfg.deployUser
      ];
      auto-optimise-store = mkDefault true;
    };
    nix.gc = {
      automatic = mkDefault true;
      options = mkDefault "--delete-older-than 30d";
    };

    # Time sync: systemd-timesyncd is on by default in NixOS; TLS and Galera need sane clocks.
    time.timeZone = mkDefault "UTC";

    systemd.tmpfiles.rules = [
      "d /var/lib/nixstack 0755 root root -"
      "d ${cfg.secretsDir} 0750 root ${cfg.secretsGroup} -"
      # Secrets that arrive without the group (`nixstack install` copies them with
      # nixos-anywhere, which makes every file root:root) become readable by the services.
      "z ${cfg.secretsDir}/* 0640 root ${cfg.secretsGroup} -"
    ];

    # Boot loader and root file system: a documented default matching the generated disko
    # layout (GPT, a vfat ESP labelled `ESP` on /boot, ext4 labelled `nixos` on /). Whole
    # values at default priority, so a disko layout, an image builder or `local.nix` replaces
    # them instead of merging field by field.
    boot.loader.systemd-boot.enable = mkDefault (cfg.bootLoader == "systemd-boot");
    boot.loader.efi.canTouchEfiVariables = mkDefault (cfg.bootLoader == "systemd-boot");
    boot.loader.grub = mkIf (cfg.bootLoader == "grub") {
      enable = mkDefault true;
      # Weaker than the image builders' and disko's own defaults.
      devices = lib.mkOverride 1100 (lib.optional (cfg.disk != null) cfg.disk);
    };
    fileSystems."/" = mkDefault {
      device = "/dev/disk/by-label/nixos";
      fsType = "ext4";
    };
    fileSystems."/boot" = mkIf (cfg.bootLoader == "systemd-boot") (mkDefault {
      device = "/dev/disk/by-label/ESP";
      fsType = "vfat";
      options = espOptions;
    });
    # `system.build.images.<variant>` evaluates the host again with the variant's module
    # (nixos/modules/image/images.nix); the EFI disk images' disk-image.nix defines
    # `fileSystems."/boot"` (device and fsType) at normal priority, so the mkDefault value
    # above loses there whole, masks included. A module added to the variant through
    # `image.modules` defines the options at that same priority: they merge with the image's.
    image.modules = mkIf (cfg.bootLoader == "systemd-boot") (
      lib.genAttrs [ "raw-efi" "qemu-efi" ] (_: { ... }: { fileSystems."/boot".options = espOptions; })
    );
  };
}
