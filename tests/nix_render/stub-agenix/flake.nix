# A stand-in for agenix: the option shapes of `age.secrets` as read in
# ryantm/agenix@b027ee29d959fda4b60b57566d64c98a202e0feb (modules/age.nix: `secretType`,
# `options.age`). The stub nixpkgs does not run the module system, so the module is a record
# with `_secretsCheck`: given a host's values (its hosts/<host>/default.nix), it applies the
# options' types and defaults to `age` and returns each secret as agenix would see it, throwing
# on an unknown option or a value of the wrong type. What it cannot do: decrypt anything or run
# agenix's activation script (see docs/nixos.md, "Secrets backends").
{
  outputs =
    { self }:
    let
      inherit (builtins)
        attrNames
        filter
        isAttrs
        isBool
        isPath
        isString
        mapAttrs
        pathExists
        ;
      fail = message: throw "agenix stand-in: ${message}";
      only =
        where: known: value:
        let
          unknown = filter (key: !(builtins.elem key known)) (attrNames value);
        in
        if unknown != [ ] then fail "the option `${where}.${builtins.head unknown}' does not exist" else value;
      str =
        where: value:
        if isString value then value else fail "`${where}' is not of type `string'";

      # options.age: secretsDir (types.path, default /run/agenix) and the rest.
      ageOptions = [
        "ageBin"
        "secrets"
        "secretsDir"
        "secretsMountPoint"
        "identityPaths"
      ];
      # secretType's options.
      secretOptions = [
        "name"
        "file"
        "path"
        "mode"
        "owner"
        "group"
        "symlink"
      ];
      secret =
        secretsDir: attribute: raw:
        let
          where = "age.secrets.${attribute}";
          value = only where secretOptions raw;
          name = str "${where}.name" (value.name or attribute);
          owner = str "${where}.owner" (value.owner or "0");
        in
        {
          inherit name owner;
          # types.path: a path value (copied to the store at build time: only ciphertext).
          file =
            if !(value ? file) then
              fail "the option `${where}.file' is used but not defined"
            else if !(isPath value.file) then
              fail "`${where}.file' must be a path in the flake (got ${builtins.typeOf value.file})"
            else
              {
                path = toString value.file;
                exists = pathExists value.file;
              };
          path = str "${where}.path" (value.path or "${secretsDir}/${name}");
          mode = str "${where}.mode" (value.mode or "0400");
          # default: users.${owner}.group or "0"; the stand-in has no users.
          group = str "${where}.group" (value.group or "0");
          symlink =
            let
              s = value.symlink or true;
            in
            if isBool s then s else fail "`${where}.symlink' is not of type `boolean'";
        };
      check =
        host:
        let
          age = only "age" ageOptions (host.age or { });
          secretsDir = age.secretsDir or "/run/agenix";
        in
        if !(isAttrs (age.secrets or { })) then
          fail "`age.secrets' is not an attribute set"
        else
          {
            backend = "agenix";
            secrets = mapAttrs (secret secretsDir) (age.secrets or { });
          };
    in
    {
      nixosModules.age = {
        _stub = "agenix-module";
        _secretsCheck = check;
      };
      nixosModules.default = self.nixosModules.age;
    };
}
