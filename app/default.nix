# The nixstack demo app (the `app` role): one Python file with PyMySQL.
# The flake refers to it as `pkgs.callPackage ./app { }`.
{
  lib,
  python3Packages,
}:
python3Packages.buildPythonApplication {
  pname = "nixstack-demo-app";
  version = "0.1.0";
  pyproject = false;

  src = lib.fileset.toSource {
    root = ./.;
    fileset = ./nixstack_demo_app.py;
  };

  dependencies = [ python3Packages.pymysql ];

  dontBuild = true;
  installPhase = ''
    runHook preInstall
    install -Dm755 nixstack_demo_app.py $out/bin/nixstack-demo-app
    runHook postInstall
  '';

  # Smoke test: the program loads its dependencies and parses its options.
  doInstallCheck = true;
  installCheckPhase = ''
    $out/bin/nixstack-demo-app --help > /dev/null
  '';

  meta = {
    description = "nixstack demo app: writes to and reads from the Galera cluster, reports which hosts served";
    license = lib.licenses.mit;
    mainProgram = "nixstack-demo-app";
  };
}
