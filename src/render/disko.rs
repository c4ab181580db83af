//! `hosts/<host>/disko.nix`: the disk layout `nixstack install` (nixos-anywhere, disko)
//! partitions and formats on a host's `disk` — GPT, the boot partition its boot loader needs,
//! and one ext4 root over the rest of the disk. Hosts without a `disk` get no file.
//!
//! The file systems carry the labels `modules/base.nix` mounts by default (`ESP` on `/boot`,
//! `nixos` on `/`), so a machine installed from this layout also boots with the module's
//! defaults alone. disko's own `fileSystems` entries (by partition label) take over from those
//! defaults, which base.nix sets with `mkDefault` for that reason.
//!
//! Kept deliberately simple: no swap, no separate `/var/lib/mysql` for database hosts, no
//! encryption. A host that needs more sets its own `disko.devices` (with `lib.mkForce`) in
//! `local.nix`.

use crate::render::nixos::expr::Nix;
use crate::spec::ImageVariant;
use crate::topology::{Host, Topology};

/// The file name beside the host's `default.nix`.
pub const FILE_NAME: &str = "disko.nix";

/// Label of the EFI system partition's file system (`/dev/disk/by-label/ESP` in base.nix).
pub const ESP_LABEL: &str = "ESP";

/// Label of the root file system (`/dev/disk/by-label/nixos` in base.nix and NixOS's image
/// builders).
pub const ROOT_LABEL: &str = "nixos";

/// The attribute under `disko.devices.disk` that names the host's one disk.
pub const DISK_NAME: &str = "main";

/// One GPT partition of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Attribute name under `partitions` (disko names the GPT partition `disk-main-<name>`).
    pub name: &'static str,
    /// sgdisk type code: `EF00` EFI system partition, `EF02` BIOS boot, `8300` Linux.
    pub gpt_type: &'static str,
    /// sgdisk size (`512M`), or `100%` for the rest of the disk.
    pub size: &'static str,
    /// The file system on it; `None` for the BIOS boot partition GRUB writes raw.
    pub filesystem: Option<Filesystem>,
}

/// A file system disko creates and NixOS mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filesystem {
    /// `mkfs.<format>`.
    pub format: &'static str,
    pub mountpoint: &'static str,
    pub label: &'static str,
    pub mount_options: &'static [&'static str],
}

impl Filesystem {
    /// The mkfs arguments that set the label (`mkfs.vfat -n`, `mkfs.ext4 -L`).
    pub fn label_args(&self) -> [&'static str; 2] {
        match self.format {
            "vfat" => ["-n", self.label],
            _ => ["-L", self.label],
        }
    }
}

/// The partitions of every generated layout for `topology`: they depend only on the boot
/// loader base.nix picks from the image variant (GRUB on BIOS images, systemd-boot else).
pub fn partitions(topology: &Topology) -> Vec<Partition> {
    let root = Partition {
        name: "root",
        gpt_type: "8300",
        size: "100%",
        filesystem: Some(Filesystem {
            format: "ext4",
            mountpoint: "/",
            label: ROOT_LABEL,
            mount_options: &["defaults"],
        }),
    };
    match boot_loader(topology.stack.image) {
        // GRUB on a GPT disk of a BIOS machine embeds its core image in a BIOS boot
        // partition; disko sees the EF02 type and sets `boot.loader.grub.devices` to the disk.
        "grub" => vec![Partition { name: "boot", gpt_type: "EF02", size: "1M", filesystem: None }, root],
        _ => vec![
            Partition {
                name: "ESP",
                gpt_type: "EF00",
                size: "512M",
                filesystem: Some(Filesystem {
                    format: "vfat",
                    mountpoint: "/boot",
                    label: ESP_LABEL,
                    // As base.nix mounts it: the ESP holds the boot loader's random seed,
                    // which systemd-boot wants readable by root only.
                    mount_options: &["fmask=0077", "dmask=0077"],
                }),
            },
            root,
        ],
    }
}

/// One line per partition, for `nixstack install`'s summary: `ESP 512M vfat /boot (label ESP)`.
pub fn describe(topology: &Topology) -> Vec<String> {
    partitions(topology)
        .iter()
        .map(|partition| {
            let size = if partition.size == "100%" { "rest" } else { partition.size };
            match &partition.filesystem {
                Some(fs) => {
                    format!("{} {size} {} on {} (label {})", partition.name, fs.format, fs.mountpoint, fs.label)
                }
                None => format!("{} {size} BIOS boot (GRUB)", partition.name),
            }
        })
        .collect()
}

/// `hosts/<host>/disko.nix` of `host` (without the writer's header line), or `None` when the
/// spec gives the host no `disk`.
pub fn disko(topology: &Topology, host: &Host) -> Option<String> {
    let disk = host.disk.as_ref()?;
    let partitions = partitions(topology)
        .into_iter()
        .map(|partition| {
            let mut values = vec![("type", Nix::str(partition.gpt_type)), ("size", Nix::str(partition.size))];
            if let Some(fs) = &partition.filesystem {
                values.push((
                    "content",
                    attrs([
                        ("type", Nix::str("filesystem")),
                        ("format", Nix::str(fs.format)),
                        ("mountpoint", Nix::str(fs.mountpoint)),
                        ("mountOptions", Nix::strs(fs.mount_options.iter().copied())),
                        ("extraArgs", Nix::strs(fs.label_args())),
                    ]),
                ));
            }
            (vec![partition.name.to_string()], attrs(values))
        })
        .collect();
    let main = attrs([
        ("type", Nix::str("disk")),
        ("device", Nix::str(disk)),
        ("content", attrs([("type", Nix::str("gpt")), ("partitions", Nix::Attrs(partitions))])),
    ]);
    // The disk images lay out a disk of their own (disk-image.nix: file systems by the labels
    // `nixos` and `ESP`): disko's file systems, plain definitions with other devices, would
    // conflict with theirs, so the image variants turn disko's NixOS config off, as disko
    // advises for images (`disko.enableConfig`: "should be false on an installer image").
    let images = Nix::Attrs(
        DISK_IMAGE_VARIANTS
            .iter()
            .map(|variant| (vec![variant.to_string(), "disko".into(), "enableConfig".into()], Nix::Bool(false)))
            .collect(),
    );
    let body = Nix::Attrs(vec![
        (["disko", "devices", "disk", DISK_NAME].map(str::to_string).to_vec(), main),
        (vec!["image".into(), "modules".into()], images),
    ]);
    Some(format!(
        "# Disk layout of {host_name} for `nixstack install {host_name}` (nixos-anywhere runs disko with it):\n\
         # the whole disk is repartitioned and formatted, everything on it is lost.\n\
         # Labels match the defaults of modules/base.nix. For another layout set\n\
         # `disko.devices = lib.mkForce {{ ... }};` in ./local.nix. The disk images\n\
         # (`system.build.images`) bring their own layout: disko's is off there.\n\
         {body}\n",
        host_name = host.name,
        body = body.render(),
    ))
}

/// The `system.build.images` variants built by nixos/modules/virtualisation/disk-image.nix,
/// which defines `fileSystems."/"` and `"/boot"` itself.
pub const DISK_IMAGE_VARIANTS: [&str; 4] = ["qemu", "qemu-efi", "raw", "raw-efi"];

fn attrs<'a>(bindings: impl IntoIterator<Item = (&'a str, Nix)>) -> Nix {
    Nix::Attrs(bindings.into_iter().map(|(key, value)| (vec![key.to_string()], value)).collect())
}

/// The boot loader the modules configure: BIOS images boot with GRUB, everything else with
/// systemd-boot on an EFI system partition.
pub fn boot_loader(image: ImageVariant) -> &'static str {
    match image {
        ImageVariant::Raw | ImageVariant::Qemu => "grub",
        ImageVariant::RawEfi | ImageVariant::QemuEfi | ImageVariant::Iso => "systemd-boot",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SpecSource;
    use crate::topology::compile;

    fn topology(text: &str) -> Topology {
        compile(&SpecSource { name: "test.toml".into(), text: text.into() }).unwrap()
    }

    #[test]
    fn only_hosts_with_a_disk_get_a_layout() {
        let topology = compile(&SpecSource::embedded_default()).unwrap();
        for host in &topology.hosts {
            assert_eq!(disko(&topology, host).is_some(), host.disk.is_some(), "{}", host.name);
        }
    }

    #[test]
    fn an_efi_layout_has_a_labelled_esp_and_root() {
        let topology = compile(&SpecSource::embedded_default()).unwrap();
        let lb1 = topology.hosts.iter().find(|h| h.name == "lb1").unwrap();
        let text = disko(&topology, lb1).unwrap();
        assert!(text.contains("disko.devices.disk.main = {"), "{text}");
        assert!(text.contains("device = \"/dev/sda\";"), "{text}");
        assert!(text.contains("type = \"EF00\";"), "{text}");
        assert!(!text.contains("EF02"), "{text}");
        for label in ["\"-n\"", "\"ESP\"", "\"-L\"", "\"nixos\""] {
            assert!(text.contains(label), "{label}: {text}");
        }
    }

    #[test]
    fn a_bios_image_gets_a_bios_boot_partition_and_no_esp() {
        let text = crate::spec::DEFAULT_SPEC.replace("image = \"raw-efi\"", "image = \"raw\"");
        assert_ne!(text, crate::spec::DEFAULT_SPEC, "the default spec's image line changed");
        let topology = topology(&text);
        let names: Vec<&str> = partitions(&topology).iter().map(|p| p.name).collect();
        assert_eq!(names, ["boot", "root"]);
        assert_eq!(partitions(&topology)[0].gpt_type, "EF02");
    }

    #[test]
    fn a_disk_path_cannot_break_out_of_its_string() {
        let text =
            crate::spec::DEFAULT_SPEC.replacen("disk = \"/dev/sda\"", "disk = \"/dev/sda\\\"; evil = \\\"${x}\"", 1);
        let topology = topology(&text);
        let lb1 = topology.hosts.iter().find(|h| h.name == "lb1").unwrap();
        let rendered = disko(&topology, lb1).unwrap();
        assert!(rendered.contains(r#"device = "/dev/sda\"; evil = \"\${x}";"#), "{rendered}");
        assert!(rnix::Root::parse(&rendered).errors().is_empty());
    }
}
