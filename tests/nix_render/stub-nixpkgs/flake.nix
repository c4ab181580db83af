# A stand-in for nixpkgs with just what the generated flake calls, to evaluate that flake's
# outputs on a machine without nixpkgs (tests/nix_render.rs). `lib.nixosSystem` returns the
# attributes the flake reads and records the modules it was given; `legacyPackages.<system>`
# is the stand-in package set.
{
  outputs =
    { self }:
    {
      lib = {
        nixosSystem =
          { modules }:
          {
            inherit modules;
            config = {
              system.build = {
                # Named after the host directory (the first module), to tell the systems apart.
                toplevel = "toplevel-${baseNameOf (toString (builtins.head modules))}";
                images = builtins.listToAttrs (
                  map
                    (name: {
                      inherit name;
                      value = "image-${name}";
                    })
                    [
                      "raw-efi"
                      "raw"
                      "qemu-efi"
                      "qemu"
                      "iso"
                    ]
                );
              };
              environment.etc."haproxy.cfg".source = "haproxy.cfg";
              # What deploy-rs's `activate.nixos` reads besides the toplevel.
              boot.loader = {
                systemd-boot.enable = true;
                efi.efiSysMountPoint = "/boot";
              };
            };
          };
        mapAttrs' =
          f: set:
          builtins.listToAttrs (map (name: f name set.${name}) (builtins.attrNames set));
        nameValuePair = name: value: { inherit name value; };
        mapAttrs = builtins.mapAttrs;
      };
      # What colmena's `meta.nixpkgs` gets: an initialized package set per system.
      legacyPackages = builtins.listToAttrs (
        map
          (system: {
            name = system;
            value = import ./default.nix { inherit system; };
          })
          [
            "x86_64-linux"
            "aarch64-linux"
          ]
      );
    };
}
