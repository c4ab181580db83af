# A stand-in for disko: its NixOS module, by name.
{
  outputs =
    { self }:
    {
      nixosModules.disko = "disko-module";
    };
}
