# stunnel for MariaDB's rsync state snapshot transfer, with Mozilla's TLS settings in front of
# the configuration wsrep_sst_rsync writes. Shipped verbatim: modules/db.nix puts it on the
# mysql unit's PATH as `stunnel`, the lab and tests/db_configs.rs on the lab's.
#
# Why: wsrep_sst_rsync (MariaDB 10.11) writes its own stunnel.conf (key, cert, CA, verify, and
# on the joiner an `[rsync]` service) and runs `stunnel "$STUNNEL_CONF" &` on the joiner and
# `rsync --rsh="$STUNNEL_BIN $STUNNEL_CONF"` on the donor, both found on PATH. It has no way to
# add options, and stunnel sets its own ciphers and curves (stunnel 5.68: CBC, CCM, ARIA and
# CAMELLIA suites, X448 and secp521r1), so OPENSSL_CONF's system_default cannot limit them.
# Options placed before the first `[service]` are stunnel's defaults for every service.
#
# Usage: sst-stunnel.sh STUNNEL OPTIONS CONF [ARGS...]
#   STUNNEL  the real stunnel binary
#   OPTIONS  the rendered options (sst-stunnel.conf: sslVersionMin, ciphers, ciphersuites, curves)
#   CONF     the configuration wsrep_sst_rsync wrote; ARGS (rsync's host and command on the
#            donor) are passed on, stunnel ignores them as it does when run directly.
# The merged configuration is read from a descriptor (`stunnel -fd`), so no copy is left behind
# however often the donor starts stunnel, and the process stays the one the script started
# (exec: wsrep_sst_rsync waits on and kills that pid).
set -eu

if [ "$#" -lt 3 ] || [ ! -f "$3" ]; then
  # Not a configuration (`stunnel -version`, or no arguments): the real stunnel, as asked.
  stunnel=$1
  shift
  [ "$#" -ge 1 ] && shift
  exec "$stunnel" "$@"
fi

stunnel=$1
options=$2
conf=$3
shift 3

merged=$(mktemp "$conf.nixstack.XXXXXX")
cat -- "$options" "$conf" > "$merged"
exec 3< "$merged"
rm -f -- "$merged"
echo "nixstack: stunnel with $options before $conf" >&2
exec "$stunnel" -fd 3 "$@"
