//! Host side of a sandbox's network, over rtnetlink: a veth pair whose host
//! end joins the pool's bridge and whose other end is created directly inside
//! the sandbox's network namespace as `eth0` (init gives it its address and
//! route). Deleting the host end deletes the pair.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth};

/// A netlink connection, its task running on the runtime it was made on.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

fn describe(e: rtnetlink::Error) -> String {
    match e {
        rtnetlink::Error::NetlinkError(m) => match m.code {
            Some(code) => std::io::Error::from_raw_os_error(-code.get()).to_string(),
            None => "netlink error".into(),
        },
        other => other.to_string(),
    }
}

impl Netlink {
    /// Opens a connection; must be called inside a tokio runtime.
    pub fn connect() -> std::io::Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    /// The index of the link `name`, if it exists.
    pub async fn index(&self, name: &str) -> Result<Option<u32>, String> {
        let found = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_next()
            .await;
        match found {
            Ok(link) => Ok(link.map(|l| l.header.index)),
            Err(rtnetlink::Error::NetlinkError(m))
                if m.code.is_some_and(|c| -c.get() == libc::ENODEV) =>
            {
                Ok(None)
            }
            Err(e) => Err(describe(e)),
        }
    }

    /// Creates the veth pair `host` ↔ `eth0`, `eth0` inside the network
    /// namespace of `pid`, `host` up on the bridge `bridge`.
    pub async fn add_veth(&self, host: &str, bridge: u32, pid: i32) -> Result<(), String> {
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name("eth0".to_string())
            .setns_by_pid(pid as u32)
            .build();
        let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host.to_string())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .controller(bridge)
            .up()
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| format!("creating veth {host}: {}", describe(e)))
    }

    /// Deletes the link `name`; a missing link is not an error.
    pub async fn delete(&self, name: &str) -> Result<(), String> {
        let Some(index) = self.index(name).await? else {
            return Ok(());
        };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(m))
                if m.code.is_some_and(|c| -c.get() == libc::ENODEV) =>
            {
                Ok(())
            }
            Err(e) => Err(format!("deleting {name}: {}", describe(e))),
        }
    }

    /// Names of the links starting with `prefix`.
    pub async fn links_with_prefix(&self, prefix: &str) -> Result<Vec<String>, String> {
        let mut links = self.handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(link) = links.try_next().await.map_err(describe)? {
            for attr in link.attributes {
                if let LinkAttribute::IfName(name) = attr {
                    if name.starts_with(prefix) {
                        out.push(name);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Creates the bridge `name` with `gateway/prefix_len` and brings it up,
    /// unless it exists; `true` when it was created.
    pub async fn ensure_bridge(
        &self,
        name: &str,
        gateway: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<bool, String> {
        if self.index(name).await?.is_some() {
            return Ok(false);
        }
        self.handle
            .link()
            .add(LinkBridge::new(name).build())
            .execute()
            .await
            .map_err(|e| format!("creating bridge {name}: {}", describe(e)))?;
        let index = self
            .index(name)
            .await?
            .ok_or_else(|| format!("bridge {name} vanished after creation"))?;
        self.handle
            .address()
            .add(index, IpAddr::V4(gateway), prefix_len)
            .execute()
            .await
            .map_err(|e| format!("adding {gateway}/{prefix_len} to {name}: {}", describe(e)))?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| format!("bringing {name} up: {}", describe(e)))?;
        Ok(true)
    }
}
