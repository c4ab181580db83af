# A stand-in for deploy-rs: `lib.<system>` as read in serokell/deploy-rs@d5eff7f948535b9c723d60cd8239f8f11ddc90fa
# (flake.nix: the overlay's `deploy-rs.lib`, exposed per system by `inherit (pkgs.deploy-rs) lib;`
# under `utils.lib.eachSystem (utils.lib.defaultSystems ++ ["aarch64-darwin"])`; interface.json).
# `activate.nixos base` reads what the real one reads (`base.config.system.build.toplevel`,
# `base.config.boot.loader.systemd-boot.enable` and, with it, `efi.efiSysMountPoint`) and
# returns a derivation-like set, as the real `buildEnv` does. `deployChecks deploy` gives the
# two checks the real one gives; `deploy-schema` runs the rules of interface.json on
# `builtins.toJSON deploy` (as check-jsonschema would) when forced, `deploy-activate` checks
# that every profile's path is an activatable built by `activate.*`.
{
  outputs =
    { self }:
    let
      inherit (builtins)
        all
        attrNames
        concatStringsSep
        fromJSON
        isAttrs
        isBool
        isInt
        isList
        isString
        mapAttrs
        match
        toJSON
        ;

      # flake-utils' defaultSystems, plus aarch64-darwin.
      systems = [
        "aarch64-linux"
        "aarch64-darwin"
        "x86_64-darwin"
        "x86_64-linux"
      ];

      # interface.json, `generic_settings`: allowed in `deploy`, in every node and every profile.
      genericSettings = {
        sshUser = isString;
        user = isString;
        sshOpts = value: isList value && all isString value;
        fastConnection = isBool;
        autoRollback = isBool;
        magicRollback = isBool;
        confirmTimeout = isInt;
        activationTimeout = isInt;
        tempPath = isString;
        interactiveSudo = isBool;
      };
      # interface.json, `node_settings` and `profile_settings`.
      nodeSettings = {
        hostname = isString;
        profilesOrder = value: isList value && all isString value;
        profiles = isAttrs;
      };
      profileSettings = {
        path = isString;
        profilePath = isString;
      };

      # A property of a known name must have its type (other properties pass, as in the schema).
      typed =
        where: settings: value:
        all (
          name:
          !(value ? ${name}) || settings.${name} value.${name} || throw "deploy-schema: ${where}.${name} has the wrong type"
        ) (attrNames settings);
      required =
        where: names: value:
        all (name: value ? ${name} || throw "deploy-schema: ${where} lacks the required `${name}`") names;
      # `patternProperties` `[A-z][A-z0-9_-]*` (unanchored, as JSON Schema patterns are) with
      # `additionalProperties: false`.
      named =
        where: name:
        match ".*[A-z][A-z0-9_-]*.*" name != null || throw "deploy-schema: ${where} `${name}` is not a valid name";

      validate =
        deploy:
        let
          json = fromJSON (toJSON deploy);
          nodes = json.nodes or { };
          profile =
            node: name: value:
            let
              where = "nodes.${node}.profiles.${name}";
            in
            named "profile" name
            && typed where genericSettings value
            && typed where profileSettings value
            && required where [ "path" ] value;
          node =
            name: value:
            let
              where = "nodes.${name}";
            in
            named "node" name
            && typed where genericSettings value
            && typed where nodeSettings value
            && required where [ "hostname" ] value
            && all (profileName: profile name profileName value.profiles.${profileName}) (
              attrNames (value.profiles or { })
            );
        in
        typed "deploy" genericSettings json
        && isAttrs nodes
        && all (name: node name nodes.${name}) (attrNames nodes);

      lib =
        system:
        let
          activate = rec {
            # The real `custom`: a `buildEnv` named `activatable-<base.name>` holding `base`, a
            # `deploy-rs-activate` script running `activate`, and `activate-rs`.
            custom =
              base: activate:
              let
                name = "activatable-${if isString base then base else base.name}";
              in
              {
                type = "derivation";
                inherit name;
                outPath = "/nix/store/00000000000000000000000000000000-${name}";
                inherit base activate system;
                paths = [
                  "deploy-rs-activate"
                  "activate-rs"
                ];
              };
            nixos =
              base:
              let
                loader = base.config.boot.loader;
                toplevel = base.config.system.build.toplevel;
              in
              custom toplevel (
                concatStringsSep "\n" (
                  [ "$PROFILE/bin/switch-to-configuration switch" ]
                  ++ (
                    if loader.systemd-boot.enable then
                      [ "sed -i '/^default /d' ${loader.efi.efiSysMountPoint}/loader/loader.conf" ]
                    else
                      [ ]
                  )
                )
              );
            noop = base: custom base ":";
          };
          deployChecks =
            deploy:
            mapAttrs (_: check: check deploy) {
              deploy-schema = deploy: if validate deploy then "jsonschema-deploy-system" else throw "unreachable";
              deploy-activate =
                deploy:
                let
                  profiles = builtins.concatLists (
                    map (
                      nodeName:
                      map (profileName: {
                        inherit nodeName profileName;
                        path = deploy.nodes.${nodeName}.profiles.${profileName}.path;
                      }) (attrNames deploy.nodes.${nodeName}.profiles)
                    ) (attrNames deploy.nodes)
                  );
                  activatable =
                    p:
                    (p.path.paths or [ ]) == [
                      "deploy-rs-activate"
                      "activate-rs"
                    ]
                    || throw "#${p.nodeName}.${p.profileName} is missing the deploy-rs-activate activation script";
                in
                if all activatable profiles then "deploy-rs-check-activate" else throw "unreachable";
            };
        in
        {
          inherit activate deployChecks;
        };
    in
    {
      lib = builtins.listToAttrs (
        map (system: {
          name = system;
          value = lib system;
        }) systems
      );
    };
}
