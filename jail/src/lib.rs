//! Skybridge's jail sandboxes: one sandbox per execution for natively built
//! (static) functions.
//!
//! - [`linux`]: the Linux driver (namespaces, cgroups, seccomp), the one that
//!   runs on Linux hosts;
//! - [`freebsd`]: the FreeBSD driver (jail(8)/`jail_set`, ZFS clones,
//!   rctl), Sky Island's design; its command lines and parameters are pure
//!   and tested everywhere, the part making jails compiles only for FreeBSD;
//! - [`ip_pool`]: the IPv4 addresses sandboxes with a network borrow;
//! - [`proto`]: what the Linux driver and a sandbox's init say to each other;
//! - [`marker`]: the exit marker that ends a Go shim's output.

pub mod freebsd;
pub mod ip_pool;
pub mod marker;
pub mod proto;

#[cfg(target_os = "linux")]
pub mod linux;
