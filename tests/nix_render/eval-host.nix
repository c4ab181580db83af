# Evaluates one generated host with the real Nix evaluator, without nixpkgs (which this
# machine does not have): the host file and nixstack's role modules are called with
# stand-ins for nixpkgs' `lib` and `pkgs` that have nixpkgs' semantics for the few functions
# the modules use; the modules see the host's values over their options' defaults (and over
# the handful of NixOS defaults they read); the module-system wrappers (`mkIf`, `mkMerge`,
# priorities) are resolved. It is not the NixOS module system: definitions are merged by a
# plain deep union and no NixOS module runs. What it proves: every expression the modules
# evaluate for this host is well-formed, the modules' own assertions hold, and the scripts
# and strings they generate are the ones a test can then run.
#
# Output (use with `nix-instantiate --eval --strict --json`):
#   { host = <the host file's values>; config = <what the modules set>;
#     nixosDefaults = <the NixOS defaults above>; failedAssertions = [ <message> ];
#     fileSystems = [ <ranked definitions> ]; imageFileSystems.<variant> = [ <ranked definitions> ]; }
{
  hostFile,
  modulesDir,
  # Values set over the host's, e.g. a secrets directory of the test's own.
  overrides ? { },
}:
let
  inherit (builtins)
    attrNames
    concatStringsSep
    filter
    foldl'
    isAttrs
    isFunction
    isList
    isPath
    listToAttrs
    mapAttrs
    replaceStrings
    stringLength
    substring
    ;

  # A definition whose `mkIf` condition is false: dropped, as the module system drops it.
  skip = {
    _nixstackSkipped = true;
  };
  isSkipped = value: isAttrs value && value ? _nixstackSkipped;

  # Deep union of definitions: sets merge key by key, lists concatenate, otherwise the right
  # side wins (the modules never define one option twice with different values).
  union =
    a: b:
    if isAttrs a && isAttrs b && !(a ? _type) && !(b ? _type) then
      a // mapAttrs (name: value: if a ? ${name} then union a.${name} value else value) b
    else if isList a && isList b then
      a ++ b
    else
      b;

  lib = rec {
    # The module system's wrappers, resolved below by `resolve`.
    mkIf = condition: content: {
      _type = "if";
      inherit condition content;
    };
    mkMerge = contents: {
      _type = "merge";
      inherit contents;
    };
    mkOverride = priority: content: {
      _type = "override";
      inherit priority content;
    };
    mkDefault = mkOverride 1000;
    mkForce = mkOverride 50;
    # Order within a merged list (lib.mkOrder; mkBefore is 500, a plain definition 1000): kept
    # as given here, as only nixstack's modules are merged (a test reads where it matters).
    mkOrder = priority: content: {
      _type = "order";
      inherit priority content;
    };
    mkBefore = mkOrder 500;

    # Option declarations: kept as data, their defaults are applied to the host's values.
    mkOption = declaration: declaration // { _type = "option"; };
    mkEnableOption = _: mkOption { default = false; };
    mkPackageOption =
      pkgs: name: _:
      mkOption { default = pkgs.${name}; };
    literalExpression = text: {
      _type = "literalExpression";
      inherit text;
    };
    types = {
      bool = { };
      str = { };
      path = { };
      port = { };
      package = { };
      ints.between = _: _: { };
      enum = _: { };
      strMatching = _: { };
      nullOr = type: type;
      listOf = elem: {
        kind = "listOf";
        inherit elem;
      };
      attrsOf = elem: {
        kind = "attrsOf";
        inherit elem;
      };
      submodule = module: {
        kind = "submodule";
        options = (if isFunction module then module { } else module).options;
      };
    };

    # nixpkgs' functions, same semantics.
    concatStrings = concatStringsSep "";
    concatMapStrings = f: list: concatStrings (map f list);
    concatMapStringsSep = separator: f: list: concatStringsSep separator (map f list);
    filter = builtins.filter;
    mapAttrsToList = f: set: map (name: f name set.${name}) (attrNames set);
    optional = condition: value: if condition then [ value ] else [ ];
    optionalString = condition: text: if condition then text else "";
    escapeShellArg = arg: "'${replaceStrings [ "'" ] [ "'\\''" ] (toString arg)}'";
    escapeShellArgs = concatMapStringsSep " " escapeShellArg;
    hasPrefix = prefix: text: substring 0 (stringLength prefix) text == prefix;
    removePrefix =
      prefix: text:
      if hasPrefix prefix text then substring (stringLength prefix) (stringLength text) text else text;
    elem = builtins.elem;
    genAttrs =
      names: f:
      listToAttrs (
        map (name: {
          inherit name;
          value = f name;
        }) names
      );
    getExe = package: "${package}/bin/${baseNameOf package}";
  };

  # Packages are their store-path-like names; builders return what they were given.
  pkgs =
    listToAttrs (
      map
        (name: {
          inherit name;
          value = "/nix/store/${name}";
        })
        [
          "bash"
          "curl"
          "gawk"
          "gnutar"
          "gzip"
          "haproxy"
          "inetutils"
          "iproute2"
          "keepalived"
          "mariadb"
          "mariadb-galera"
          "netcat"
          "nixstack-app"
          "nixstack-demo-app"
          "nixstack-static"
          "opentelemetry-collector-contrib"
          "procps"
          "pv"
          "restic"
          "rsync"
          "socat"
          "stunnel"
          "which"
        ]
    )
    // {
      writeShellScript = _name: text: text;
      # The script as data (nixpkgs: a store directory with bin/<name>, `#!${runtimeShell}`
      # then the text).
      writeShellScriptBin = name: text: {
        _type = "writeShellScriptBin";
        inherit name text;
      };
      runtimeShell = "/nix/store/bash/bin/bash";
      # pkgs.replaceVars: the file with each `@name@` replaced (a store path in nixpkgs).
      replaceVars =
        src: replacements:
        builtins.toFile (baseNameOf src) (
          builtins.replaceStrings (map (name: "@${name}@") (builtins.attrNames replacements)) (
            builtins.attrValues replacements
          ) (builtins.readFile src)
        );
      python3 = {
        withPackages = _: "/nix/store/python3-env";
        sitePackages = "lib/python3/site-packages";
      };
      python3Packages = {
        buildPythonPackage = attrs: attrs;
        fetchPypi = attrs: attrs;
        setuptools = "/nix/store/setuptools";
        requests = "/nix/store/requests";
        retry = "/nix/store/retry";
      };
    };

  # What NixOS itself defines and the modules read.
  nixosDefaults = {
    # base.nix turns NixOS's iptables firewall off on every nixstack host.
    networking.firewall.enable = false;
    services.haproxy.group = "haproxy";
    services.keepalived.package = pkgs.keepalived;
    services.nginx.virtualHosts = { };
    services.collectd.user = "collectd";
    services.mysql = {
      user = "mysql";
      group = "mysql";
      package = pkgs.mariadb;
      settings = { };
      galeraCluster = {
        # nixpkgs' mysql.nix (CHN-beta/nixpkgs 04894b588b23, faukah/nixpkgs 3b20077cd82f, the
        # 25.11 module): `package` defaults to a literalExpression, not to a package.
        package = lib.literalExpression "pkgs.mariadb-galera";
        localAddress = "";
        nodeAddresses = [ ];
        clusterAddress = "";
      };
    };
  };

  isOption = value: isAttrs value && (value._type or null) == "option";

  # The host's value of an option tree: what it set, with the declared defaults (also inside
  # submodules) where it set nothing; an option without a default throws when read, as in
  # NixOS.
  withDefaults =
    path: options: given:
    given
    // mapAttrs (
      name: option:
      if isOption option then
        if given ? ${name} then
          applyType (option.type or { }) given.${name}
        else
          option.default or (throw "the option ${path}${name} is used but not defined")
      else
        withDefaults "${path}${name}." option (given.${name} or { })
    ) options;

  applyType =
    type: value:
    if (type.kind or null) == "submodule" && isAttrs value then
      withDefaults "" type.options value
    else if (type.kind or null) == "listOf" && isList value then
      map (applyType type.elem) value
    else if (type.kind or null) == "attrsOf" && isAttrs value then
      mapAttrs (_: applyType type.elem) value
    else
      value;

  # A module's config with the wrappers resolved: false conditions dropped, priorities
  # forgotten, merges unioned.
  resolve =
    value:
    if isAttrs value && (value._type or null) == "if" then
      (if value.condition then resolve value.content else skip)
    else if isAttrs value && (value._type or null) == "merge" then
      foldl' union { } (filter (v: !isSkipped v) (map resolve value.contents))
    else if isAttrs value && (value._type or null) == "override" then
      resolve value.content
    else if isAttrs value && (value._type or null) == "order" then
      resolve value.content
    else if isAttrs value && !(value ? _type) then
      let
        resolved = mapAttrs (_: resolve) value;
      in
      removeAttrs resolved (filter (name: isSkipped resolved.${name}) (attrNames resolved))
    else
      value;

  host = removeAttrs (import hostFile { inherit lib pkgs; }) [ "imports" ];
  modules = map import (import modulesDir).imports;
  call = module: module { inherit config lib pkgs; };
  declared = foldl' union { } (map (module: (call module).options or { }) modules);
  config = union nixosDefaults (withDefaults "" declared (union host overrides));

  # The module's config body: `config = ...` if it has `options`, else the whole module.
  body = module: let m = call module; in if m ? options then m.config or { } else m;
  defined = foldl' union { } (filter (v: !isSkipped v) (map (module: resolve (body module)) modules));

  # A definition with its wrappers peeled as the module system ranks it: conditions applied,
  # merges split, the priority of an `mkOverride` (`mkDefault` is 1000) kept, else `priority`.
  peel =
    priority: value:
    if isAttrs value && (value._type or null) == "if" then
      (if value.condition then peel priority value.content else [ ])
    else if isAttrs value && (value._type or null) == "merge" then
      builtins.concatMap (peel priority) value.contents
    else if isAttrs value && (value._type or null) == "override" then
      peel value.priority value.content
    else if isAttrs value && (value._type or null) == "order" then
      peel priority value.content
    else
      [
        {
          inherit priority;
          content = value;
        }
      ];

  # The `fileSystems` definitions of a module body, ranked: each with the priority of the
  # whole definition and, per mount point, the priorities of its values (a plain definition
  # is 100, lib.modules' defaultOverridePriority). tests/nix_render.rs merges them with an
  # image builder's the way lib/modules.nix does.
  fileSystemDefinitions =
    moduleBody:
    builtins.concatMap (
      root:
      map (definition: {
        inherit (definition) priority;
        mounts = mapAttrs (
          _: value:
          map (mount: {
            inherit (mount) priority;
            value = resolve mount.content;
          }) (peel 100 value)
        ) definition.content;
      }) (if root.content ? fileSystems then peel 100 root.content.fileSystems else [ ])
    ) (peel 100 moduleBody);

  # The modules the host adds to `system.build.images.<variant>` through `image.modules`.
  imageModuleBody =
    module:
    let
      m = if isFunction module then module { inherit config lib pkgs; } else module;
    in
    if m ? options then m.config or { } else m;

  # JSON-safe: paths as strings (not copied to the store), functions named.
  toData =
    value:
    if isPath value then
      toString value
    else if isFunction value then
      "<function>"
    else if isAttrs value then
      mapAttrs (_: toData) value
    else if isList value then
      map toData value
    else
      value;
in
{
  host = toData host;
  config = toData defined;
  nixosDefaults = toData nixosDefaults;
  fileSystems = toData (builtins.concatMap (module: fileSystemDefinitions (body module)) modules);
  imageFileSystems = mapAttrs (
    _: module: toData (fileSystemDefinitions (imageModuleBody module))
  ) (defined.image.modules or { });
  failedAssertions = map (assertion: assertion.message) (
    filter (assertion: !assertion.assertion) (defined.assertions or [ ])
  );
}
