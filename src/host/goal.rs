//! What a deploy does on each host, as colmena's `Goal`: an enum with predicates.

use clap::ValueEnum;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Goal {
    /// Make it the boot default and activate it now.
    #[default]
    Switch,
    /// Make it the boot default; activate on the next reboot.
    Boot,
    /// Activate now without making it the boot default.
    Test,
    /// Show what activation would do.
    DryActivate,
}

impl Goal {
    pub fn as_str(self) -> &'static str {
        match self {
            Goal::Switch => "switch",
            Goal::Boot => "boot",
            Goal::Test => "test",
            Goal::DryActivate => "dry-activate",
        }
    }
    /// Whether `nix-env -p /nix/var/nix/profiles/system --set` runs first.
    pub fn should_switch_profile(self) -> bool {
        matches!(self, Goal::Switch | Goal::Boot)
    }
    /// Whether services change now, so that the host must be drained and health-gated.
    pub fn requires_activation(self) -> bool {
        matches!(self, Goal::Switch | Goal::Test)
    }
}
