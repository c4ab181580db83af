# nixstack db restore, on one node, as root, with its mariadbd stopped. Two steps, the same on
# NixOS (over SSH) and in the lab; src/stack/galera_backup.rs fills in the parameters (shell
# assignments prepended to this text) and reads what the script prints.
#
#   step=inspect  fetch the backup (restic: restore the snapshot into a staging directory beside
#                 the datadir) and print what it holds: `source=DIR`, `checkpoints=…`,
#                 `complete=yes|no`, `galera_info=…`. Changes nothing else.
#   step=restore  move the datadir aside (never deleted: `<datadir>.before-restore-<stamp>`),
#                 `mariabackup --copy-back` into an empty datadir (the backup stays intact),
#                 ownership to the server's user, then the grastate.dat given.
#   step=empty    move the datadir aside and leave an empty one: the node joins by SST.
#
# Parameters: step, datadir, owner (user:group), stamp; inspect: kind (local|restic), from
# (directory, or snapshot id), repository, password_file, staging; restore: source, grastate,
# staging (removed after the copy-back; empty for a local backup).
set -eu

aside() {
  if [ -d "$datadir" ] && [ -n "$(ls -A "$datadir")" ]; then
    mv "$datadir" "$datadir.before-restore-$stamp"
    echo "moved_aside=$datadir.before-restore-$stamp"
  fi
  mkdir -p "$datadir"
  chown "$owner" "$datadir"
  chmod 0700 "$datadir"
}

case "$step" in
  inspect)
    case "$kind" in
      local)
        test -d "$from" || { echo "missing=$from"; exit 0; }
        source=$from
        ;;
      restic)
        rm -rf "$staging"
        mkdir -p "$staging"
        chmod 0700 "$staging"
        RESTIC_REPOSITORY="$repository" RESTIC_PASSWORD_FILE="$password_file" \
          restic restore "$from" --target "$staging" >&2
        marker=$(find "$staging" -name nixstack-backup-complete | head -n 1)
        if [ -n "$marker" ]; then source=$(dirname "$marker"); else source=$staging; fi
        ;;
    esac
    echo "source=$source"
    if [ -f "$source/xtrabackup_checkpoints" ]; then
      echo "checkpoints=$(grep '^backup_type' "$source/xtrabackup_checkpoints" | head -n 1)"
    fi
    if [ -f "$source/nixstack-backup-complete" ]; then echo "complete=yes"; else echo "complete=no"; fi
    if [ -f "$source/xtrabackup_galera_info" ]; then
      echo "galera_info=$(head -n 1 "$source/xtrabackup_galera_info")"
    fi
    ;;
  restore)
    aside
    mariabackup --no-defaults --copy-back --target-dir="$source" --datadir="$datadir" >&2
    chown -R "$owner" "$datadir"
    printf '%s' "$grastate" > "$datadir/grastate.dat"
    chown "$owner" "$datadir/grastate.dat"
    chmod 0660 "$datadir/grastate.dat"
    # The restic staging copy is no longer needed (the snapshot stays in the repository).
    if [ -n "${staging:-}" ]; then rm -rf "$staging"; fi
    echo "restored=$datadir"
    ;;
  empty)
    aside
    echo "emptied=$datadir"
    ;;
esac
