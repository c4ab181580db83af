# A stand-in for sops-nix: the option shapes of `sops` as read in
# Mic92/sops-nix@56b24064fdcaedca53553b1a6d607fd23b613a24 (modules/sops/default.nix:
# `secretType`, `options.sops`). The stub nixpkgs does not run the module system, so the module
# is a record with `_secretsCheck`: given a host's values (its hosts/<host>/default.nix), it
# applies the options' types and defaults to `sops` and returns each secret as sops-nix would
# see it, throwing on an unknown option or a value of the wrong type. What it cannot do:
# decrypt anything or run sops-install-secrets (see docs/nixos.md, "Secrets backends").
{
  outputs =
    { self }:
    let
      inherit (builtins)
        all
        attrNames
        attrValues
        elem
        filter
        isAttrs
        isBool
        isList
        isPath
        isString
        mapAttrs
        pathExists
        ;
      fail = message: throw "sops-nix stand-in: ${message}";
      only =
        where: known: value:
        let
          unknown = filter (key: !(elem key known)) (attrNames value);
        in
        if unknown != [ ] then fail "the option `${where}.${builtins.head unknown}' does not exist" else value;
      str =
        where: value:
        if isString value then value else fail "`${where}' is not of type `string'";
      nullOrStr =
        where: value:
        if value == null || isString value then value else fail "`${where}' is not of type `null or string'";

      sopsOptions = [
        "secrets"
        "templates"
        "placeholder"
        "defaultSopsFile"
        "defaultSopsFormat"
        "defaultSopsKey"
        "validateSopsFiles"
        "keepGenerations"
        "log"
        "environment"
        "package"
        "validationPackage"
        "useTmpfs"
        "useSystemdActivation"
        "age"
        "gnupg"
      ];
      secretOptions = [
        "name"
        "key"
        "path"
        "format"
        "mode"
        "owner"
        "uid"
        "group"
        "gid"
        "sopsFile"
        "restartUnits"
        "reloadUnits"
        "neededForUsers"
      ];
      secret =
        sops: attribute: raw:
        let
          where = "sops.secrets.${attribute}";
          value = only where secretOptions raw;
          name = str "${where}.name" (value.name or attribute);
          neededForUsers = value.neededForUsers or false;
          sopsFile = value.sopsFile or (sops.defaultSopsFile or (fail "`${where}.sopsFile' has no value (and no sops.defaultSopsFile)"));
          format = value.format or (sops.defaultSopsFormat or "yaml");
        in
        {
          inherit name;
          key = str "${where}.key" (value.key or (if (sops.defaultSopsKey or null) != null then sops.defaultSopsKey else attribute));
          # types.path; with validateSopsFiles (default true) sops-nix hashes it at evaluation.
          sopsFile =
            if !(isPath sopsFile) then
              fail "`${where}.sopsFile' must be a path in the flake (got ${builtins.typeOf sopsFile})"
            else
              {
                path = toString sopsFile;
                exists = pathExists sopsFile;
              };
          format =
            if elem format [ "yaml" "json" "binary" "dotenv" "ini" ] then
              format
            else
              fail "`${where}.format' is not one of yaml, json, binary, dotenv, ini";
          path = str "${where}.path" (
            value.path or (if neededForUsers then "/run/secrets-for-users/${name}" else "/run/secrets/${name}")
          );
          mode = str "${where}.mode" (value.mode or "0400");
          owner = nullOrStr "${where}.owner" (value.owner or null);
          # default: users.${owner}.group when owner is set; the stand-in has no users.
          group = nullOrStr "${where}.group" (value.group or null);
          neededForUsers = if isBool neededForUsers then neededForUsers else fail "`${where}.neededForUsers' is not of type `boolean'";
        };
      check =
        host:
        let
          sops = only "sops" sopsOptions (host.sops or { });
          environment = sops.environment or { };
        in
        if !(isAttrs environment && all (v: isString v || isPath v) (attrValues environment)) then
          fail "`sops.environment' is not of type `attribute set of (string or path)'"
        else
          {
            backend = "sops";
            inherit environment;
            secrets = mapAttrs (secret sops) (sops.secrets or { });
          };
    in
    {
      nixosModules.sops = {
        _stub = "sops-nix-module";
        _secretsCheck = check;
      };
      nixosModules.default = self.nixosModules.sops;
    };
}
