# A stand-in for colmena: `lib.makeHive` as read in zhaofengli/colmena@5bf4ce6a24adba74a5184f4a9bef01d545a09473
# (flake.nix: `lib.makeHive = rawHive: import ./src/nix/hive/eval.nix { inherit rawHive ...;
# hermetic = true; }`; src/nix/hive/eval.nix; src/nix/hive/options.nix). It checks its argument
# the way eval.nix does, in the same order and with the same messages, and applies the
# `deployment` options' types and defaults (`deploymentOptions`). What it cannot do without
# nixpkgs is evaluate the NixOS modules: a node records the modules it would hand to
# nixos/lib/eval-config.nix after colmena's own (its `imports`), and the package set's
# `system` and `path` that eval.nix reads.
{
  outputs =
    { self }:
    let
      inherit (builtins)
        all
        attrNames
        concatMap
        elem
        filter
        hasAttr
        isAttrs
        isBool
        isInt
        isList
        isString
        listToAttrs
        mapAttrs
        removeAttrs
        typeOf
        ;

      # options.nix, `metaOptions`: the hive-wide keys (the module system rejects any other).
      metaKeys = [
        "name"
        "description"
        "nixpkgs"
        "nodeNixpkgs"
        "nodeSpecialArgs"
        "machinesFile"
        "specialArgs"
        "allowApplyAll"
      ];

      # options.nix, `deploymentOptions`: name → type check and default (`name` is the node's).
      deploymentOptions = name: {
        targetHost = {
          check = value: value == null || isString value;
          type = "null or string";
          default = name;
        };
        targetPort = {
          check = value: value == null || (isInt value && value >= 0);
          type = "null or unsigned integer";
          default = null;
        };
        targetUser = {
          check = value: value == null || isString value;
          type = "null or string";
          default = "root";
        };
        allowLocalDeployment = {
          check = isBool;
          type = "boolean";
          default = false;
        };
        buildOnTarget = {
          check = isBool;
          type = "boolean";
          default = false;
        };
        tags = {
          check = value: isList value && all isString value;
          type = "list of string";
          default = [ ];
        };
        keys = {
          check = isAttrs;
          type = "attribute set of submodule";
          default = { };
        };
        replaceUnknownProfiles = {
          check = isBool;
          type = "boolean";
          default = true;
        };
        privilegeEscalationCommand = {
          check = value: isList value && all isString value;
          type = "list of string";
          default = [
            "sudo"
            "-H"
            "--"
          ];
        };
        sshOptions = {
          check = value: isList value && all isString value;
          type = "list of string";
          default = [ ];
        };
      };

      # eval.nix, `reservedNames`.
      reservedNames = [
        "defaults"
        "network"
        "meta"
      ];

      makeHive =
        rawHive:
        let
          # eval.nix, `rawToHive`.
          uncheckedHive =
            if typeOf rawHive == "lambda" || rawHive ? __functor then
              rawHive { }
            else if typeOf rawHive == "set" then
              rawHive
            else
              throw "The config must evaluate to an attribute set.";

          # eval.nix, `uncheckedUserMeta`.
          uncheckedUserMeta =
            if uncheckedHive ? meta && uncheckedHive ? network then
              throw "Only one of `network` and `meta` may be specified. `meta` should be used as `network` is for NixOps compatibility."
            else if uncheckedHive ? meta then
              uncheckedHive.meta
            else if uncheckedHive ? network then
              uncheckedHive.network
            else
              { };

          # The module system's check of `meta` against `metaOptions`.
          userMeta =
            let
              unknown = filter (key: !elem key metaKeys) (attrNames uncheckedUserMeta);
            in
            if unknown != [ ] then
              throw "The option `${builtins.head unknown}' does not exist (colmena meta)."
            else
              {
                nodeNixpkgs = { };
                nodeSpecialArgs = { };
                specialArgs = { };
              }
              // uncheckedUserMeta;

          hive =
            assert
              !(uncheckedHive ? __schema)
              || throw "You cannot pass in an already-evaluated Hive into the evaluator.";
            removeAttrs ({ defaults = { }; } // uncheckedHive) [
              "meta"
              "network"
            ];

          # eval.nix, `mkNixpkgs`, hermetic (makeHive sets `hermetic = true`).
          mkNixpkgs =
            configName: pkgConf:
            if typeOf pkgConf == "path" || (typeOf pkgConf == "set" && pkgConf ? outPath) then
              throw "Passing a path to Nixpkgs as ${configName} is no longer accepted with Flakes."
            else if typeOf pkgConf == "lambda" then
              throw "Passing a Nixpkgs lambda as ${configName} is no longer accepted with Flakes."
            else if typeOf pkgConf == "set" then
              if pkgConf ? outputs then
                throw "Passing an uninitialized Nixpkgs input as ${configName} is no longer accepted with Flakes."
              else
                pkgConf
            else
              throw "${configName} must be one of: a path to Nixpkgs, a Nixpkgs lambda, a Nixpkgs attribute set";

          nixpkgs =
            if uncheckedUserMeta ? nixpkgs then
              mkNixpkgs "meta.nixpkgs" uncheckedUserMeta.nixpkgs
            else
              throw "meta.nixpkgs must be specified in hermetic mode.";

          # eval.nix, `configsFor`.
          configsFor =
            node:
            let
              nodeConfig = hive.${node};
            in
            assert
              !(elem node reservedNames)
              || throw "\"${node}\" is a reserved name and cannot be used as the name of a node";
            if typeOf nodeConfig == "list" then nodeConfig else [ nodeConfig ];

          # The `deployment` options of a node: every definition type-checked, defaults filled.
          deploymentOf =
            name: configs:
            let
              options = deploymentOptions name;
              definitions = map (config: config.deployment or { }) (filter isAttrs configs);
              merged = builtins.foldl' (all: definition: all // definition) { } definitions;
              checked = mapAttrs (
                key: value:
                if !(hasAttr key options) then
                  throw "The option `deployment.${key}' does not exist (node ${name})."
                else if !(options.${key}.check value) then
                  throw "The option `deployment.${key}' of node ${name} is not of type `${options.${key}.type}'."
                else
                  value
              ) merged;
            in
            mapAttrs (_: option: option.default) options // checked;

          # eval.nix, `evalNode`, up to the call of nixos/lib/eval-config.nix.
          evalNode =
            name: configs:
            let
              npkgs =
                if hasAttr name userMeta.nodeNixpkgs then
                  mkNixpkgs "meta.nodeNixpkgs.${name}" userMeta.nodeNixpkgs.${name}
                else
                  nixpkgs;
            in
            assert npkgs ? path || throw "meta.nixpkgs has no `path` (eval.nix imports eval-config.nix from it)";
            {
              inherit (npkgs) system;
              evalConfig = toString npkgs.path + "/nixos/lib/eval-config.nix";
              modules = concatMap (config: if isAttrs config then config.imports or [ ] else [ config ]) configs;
              config.deployment = deploymentOf name configs;
              specialArgs = {
                inherit name;
              }
              // userMeta.specialArgs
              // (userMeta.nodeSpecialArgs.${name} or { });
            };

          finalHive = hive // {
            meta = userMeta;
          };
          nodeNames = filter (name: !elem name reservedNames) (attrNames finalHive);
          nodes = listToAttrs (
            map (name: {
              inherit name;
              value = evalNode name (configsFor name);
            }) nodeNames
          );
        in
        # The attributes colmena's evaluated hive exports (eval.nix, `in rec { ... }`).
        builtins.seq nixpkgs {
          __schema = "v0.5";
          inherit nodes;
          deploymentConfig = mapAttrs (_: node: node.config.deployment) nodes;
          metaConfig = listToAttrs (
            map
              (name: {
                inherit name;
                value = userMeta.${name};
              })
              (
                filter (name: hasAttr name userMeta) [
                  "name"
                  "description"
                  "machinesFile"
                  "allowApplyAll"
                ]
              )
          );
        };
    in
    {
      lib = { inherit makeHive; };
    };
}
