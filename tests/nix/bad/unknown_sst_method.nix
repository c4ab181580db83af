{ ... }:
{
  services.mysql.galeraCluster.sstMethod = "xtrabackup";
}
