# A stand-in for nixpkgs with just what the generated flake calls, to evaluate that flake's
# outputs on a machine without nixpkgs (tests/nix_render.rs). `lib.nixosSystem` returns the
# attributes the flake reads and records the modules it was given.
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
                toplevel = "toplevel";
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
            };
          };
        mapAttrs' =
          f: set:
          builtins.listToAttrs (map (name: f name set.${name}) (builtins.attrNames set));
        nameValuePair = name: value: { inherit name value; };
      };
    };
}
