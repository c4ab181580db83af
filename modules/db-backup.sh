# nixstack-db-backup: one physical backup of this MariaDB Galera node (mariabackup), prepared at
# once so that it is ready to restore, then stored (a dated directory, or a restic snapshot) and
# pruned to the newest NIXSTACK_BACKUP_KEEP. Run by the nixstack-db-backup unit (modules/db.nix),
# by `nixstack db backup --lab` and by tests/galera_backup.rs: one script, shipped verbatim.
#
# Parameters (environment; none of them secret):
#   NIXSTACK_BACKUP_TARGET         local | restic
#   NIXSTACK_BACKUP_KEEP           how many backups to keep (>= 1)
#   NIXSTACK_BACKUP_PATH           local: the directory of dated backups;
#                                  restic: where a backup is staged before restic reads it
#   NIXSTACK_BACKUP_REPOSITORY     restic: the repository
#   NIXSTACK_BACKUP_PASSWORD_FILE  restic: the file holding its password (--password-file)
#   NIXSTACK_BACKUP_SOCKET         the server's unix socket (unix_socket authentication)
#   NIXSTACK_BACKUP_DEFAULTS_FILE  the server's my.cnf, read by mariabackup; empty: --no-defaults
#   NIXSTACK_BACKUP_DATADIR        the server's datadir, when the defaults file does not say
#   NIXSTACK_BACKUP_USER           the account (default: the user running this script)
#
# A backup is complete when it holds `nixstack-backup-complete`, written last, after
# `mariabackup --prepare` succeeded (xtrabackup_checkpoints: backup_type = log-applied) and
# xtrabackup_galera_info (`uuid:seqno`, then a domain id) exists. `nixstack db restore` refuses anything else.
set -eu

target=${NIXSTACK_BACKUP_TARGET:?NIXSTACK_BACKUP_TARGET (local or restic) is not set}
keep=${NIXSTACK_BACKUP_KEEP:?NIXSTACK_BACKUP_KEEP is not set}
base=${NIXSTACK_BACKUP_PATH:?NIXSTACK_BACKUP_PATH is not set}
socket=${NIXSTACK_BACKUP_SOCKET:?NIXSTACK_BACKUP_SOCKET is not set}
user=${NIXSTACK_BACKUP_USER:-$(id -un)}
case "$keep" in
  "" | *[!0-9]* | 0) echo "nixstack-db-backup: NIXSTACK_BACKUP_KEEP=$keep is not a count >= 1" >&2; exit 2 ;;
esac
case "$target" in
  local) ;;
  restic)
    : "${NIXSTACK_BACKUP_REPOSITORY:?NIXSTACK_BACKUP_REPOSITORY is not set}"
    : "${NIXSTACK_BACKUP_PASSWORD_FILE:?NIXSTACK_BACKUP_PASSWORD_FILE is not set}"
    test -s "$NIXSTACK_BACKUP_PASSWORD_FILE" || {
      echo "nixstack-db-backup: $NIXSTACK_BACKUP_PASSWORD_FILE is missing or empty (nixstack secrets init generates it)" >&2
      exit 2
    }
    ;;
  *) echo "nixstack-db-backup: NIXSTACK_BACKUP_TARGET=$target is neither local nor restic" >&2; exit 2 ;;
esac

if [ -n "${NIXSTACK_BACKUP_DEFAULTS_FILE:-}" ]; then
  defaults="--defaults-file=$NIXSTACK_BACKUP_DEFAULTS_FILE"
else
  defaults="--no-defaults"
fi
datadir_option=""
if [ -n "${NIXSTACK_BACKUP_DATADIR:-}" ]; then
  datadir_option="--datadir=$NIXSTACK_BACKUP_DATADIR"
fi

umask 077
mkdir -p "$base"
# Leftovers of an interrupted run are never a backup.
rm -rf "$base"/.partial-*
stamp=$(date -u +%Y%m%dT%H%M%SZ)
partial="$base/.partial-$stamp"

# shellcheck disable=SC2086 # $datadir_option is empty or one word
mariabackup "$defaults" --backup --galera-info --user="$user" --socket="$socket" $datadir_option \
  --target-dir="$partial"
mariabackup "$defaults" --prepare --target-dir="$partial"
# MariaDB's mariabackup writes `log-applied` after --prepare (`full-backuped` before it);
# Percona's tools write `full-prepared`.
grep -Eq '^backup_type = (log-applied|full-prepared)$' "$partial/xtrabackup_checkpoints" || {
  echo "nixstack-db-backup: $partial is not prepared (xtrabackup_checkpoints)" >&2
  exit 1
}
test -s "$partial/xtrabackup_galera_info" || {
  echo "nixstack-db-backup: mariabackup wrote no xtrabackup_galera_info (is wsrep on?)" >&2
  exit 1
}
position=$(head -n 1 "$partial/xtrabackup_galera_info" | cut -d " " -f 1)
printf 'stamp=%s\nposition=%s\n' "$stamp" "$position" > "$partial/nixstack-backup-complete"

case "$target" in
  local)
    mv "$partial" "$base/$stamp"
    echo "nixstack-db-backup: $base/$stamp at $position"
    # Retention: only complete backups count, and only after this one succeeded.
    ls -1 "$base" | grep -E '^[0-9]{8}T[0-9]{6}Z$' | sort | head -n "-$keep" | while read -r old; do
      rm -rf "${base:?}/$old"
      echo "nixstack-db-backup: removed $base/$old (keep $keep)"
    done
    ;;
  restic)
    export RESTIC_REPOSITORY="$NIXSTACK_BACKUP_REPOSITORY"
    export RESTIC_PASSWORD_FILE="$NIXSTACK_BACKUP_PASSWORD_FILE"
    restic cat config >/dev/null 2>&1 || restic init
    # Stored relative to the staging directory: a restore finds the backup by its marker.
    (cd "$partial" && restic backup --tag nixstack-db --tag "stamp-$stamp" .)
    rm -rf "$partial"
    echo "nixstack-db-backup: restic snapshot tagged stamp-$stamp at $position"
    # Every snapshot has its own staging path: group them all, not per host and path (the default).
    restic forget --tag nixstack-db --group-by '' --keep-last "$keep" --prune
    ;;
esac
