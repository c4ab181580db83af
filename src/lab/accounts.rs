//! The system users and groups the NixOS units run as, on the lab machine: looked up in
//! /etc/passwd and /etc/group, created (as system accounts without a home or login) when
//! missing and recorded, so `lab down` removes exactly those.

use std::sync::Mutex;

use anyhow::{bail, Context, Result};

use super::cmd::Cmd;
use super::state::{AccountKind, Resource, State};

/// uid and primary gid of `user`, if it exists.
pub fn user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))
}

/// gid of `group`, if it exists.
pub fn group(name: &str) -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| f.get(2)?.parse().ok())
}

/// Hosts start in parallel threads: one account change at a time, or two threads both see
/// a group missing and the second `groupadd` fails.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// Creates `group` unless it exists (recorded in `state`); returns its gid.
pub fn ensure_group(state: &Mutex<State>, name: &str) -> Result<u32> {
    let _one = ACCOUNTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    ensure_group_locked(state, name)
}

fn ensure_group_locked(state: &Mutex<State>, name: &str) -> Result<u32> {
    if let Some(gid) = group(name) {
        return Ok(gid);
    }
    state.lock().expect("state lock").record(Resource::Account { account: AccountKind::Group, name: name.into() })?;
    Cmd::new("groupadd").args(["--system", name]).run().with_context(|| format!("cannot create group {name}"))?;
    group(name).with_context(|| format!("group {name} missing after groupadd"))
}

/// Creates system user `name` with primary group `primary` unless it exists (recorded in
/// `state`); returns (uid, gid).
pub fn ensure_user(state: &Mutex<State>, name: &str, primary: &str) -> Result<(u32, u32)> {
    let _one = ACCOUNTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(ids) = user(name) {
        return Ok(ids);
    }
    ensure_group_locked(state, primary)?;
    state.lock().expect("state lock").record(Resource::Account { account: AccountKind::User, name: name.into() })?;
    Cmd::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--home-dir",
            "/var/empty",
            "--shell",
            "/usr/sbin/nologin",
            "--gid",
            primary,
            name,
        ])
        .run()
        .with_context(|| format!("cannot create user {name}"))?;
    user(name).with_context(|| format!("user {name} missing after useradd"))
}

/// Whether `user` is listed as a member of `group` in /etc/group.
pub fn is_member(user: &str, group: &str) -> bool {
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    groups
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .any(|f| f.first() == Some(&group) && f.get(3).is_some_and(|members| members.split(',').any(|m| m == user)))
}

/// Makes `user` a member of `group` unless it is (recorded in `state`), as NixOS's
/// `users.users.<user>.extraGroups` does.
pub fn ensure_member(state: &Mutex<State>, user: &str, group: &str) -> Result<()> {
    let _one = ACCOUNTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if is_member(user, group) {
        return Ok(());
    }
    let name = format!("{user}:{group}");
    state.lock().expect("state lock").record(Resource::Account { account: AccountKind::Membership, name })?;
    Cmd::new("gpasswd").args(["-a", user, group]).run().with_context(|| format!("cannot add {user} to {group}"))?;
    Ok(())
}

/// Removes an account (or membership) `up` created; Ok(false) when it is gone already.
pub fn remove(kind: AccountKind, name: &str) -> Result<bool> {
    let (exists, program, args) = match kind {
        AccountKind::User => (user(name).is_some(), "userdel", vec![name]),
        AccountKind::Group => (group(name).is_some(), "groupdel", vec![name]),
        AccountKind::Membership => {
            let (member, group) = name.split_once(':').context("a membership is recorded as user:group")?;
            (is_member(member, group), "gpasswd", vec!["-d", member, group])
        }
    };
    if !exists {
        return Ok(false);
    }
    match Cmd::new(program).args(args).run() {
        Ok(_) => Ok(true),
        Err(e) => bail!("{program} {name}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_and_a_random_name_is_not() {
        assert_eq!(user("root"), Some((0, 0)));
        assert_eq!(group("root"), Some(0));
        assert_eq!(user("nixstack-no-such-user-7f3a"), None);
    }
}
