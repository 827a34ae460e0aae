//! Skybridge's jail sandboxes: one sandbox per execution for natively built
//! (static) functions.
//!
//! - [`linux`]: the Linux driver (namespaces, cgroups, seccomp), the one that
//!   runs on Linux hosts;
//! - [`ip_pool`]: the IPv4 addresses sandboxes with a network borrow;
//! - [`proto`]: what the Linux driver and a sandbox's init say to each other.

pub mod ip_pool;
pub mod proto;

#[cfg(target_os = "linux")]
pub mod linux;
