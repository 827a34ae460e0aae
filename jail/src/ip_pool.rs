//! The IPv4 pool: addresses a sandbox with a network borrows for one
//! execution. A [`Lease`] gives its address back when dropped, on every path
//! (Sky Island never returned its addresses). An administrator can take an
//! address out of the pool (`unavailable`) or put it back (`available`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

/// `[jail.ip4]`: the addresses, the bridge they live on and its gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ip4Config {
    /// The host bridge each sandbox's veth joins.
    pub bridge: String,
    /// The first address of the pool.
    pub first: Ipv4Addr,
    /// How many consecutive addresses, from `first`.
    pub count: u32,
    /// The subnet's prefix length.
    pub prefix_len: u8,
    /// The default route of sandboxes: the bridge's own address.
    pub gateway: Ipv4Addr,
}

/// Pool errors, each with its own API code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Every address is leased or taken out.
    #[error("the IPv4 pool is exhausted: all {0} addresses are in use or unavailable")]
    Exhausted(u32),
    /// The configuration does not describe a usable pool.
    #[error("invalid IPv4 pool: {0}")]
    Invalid(String),
    /// The address is not one of the pool's.
    #[error("{0} is not in the IPv4 pool")]
    NotInPool(Ipv4Addr),
    /// The address is leased to an execution right now.
    #[error("{0} is leased to {1}; end that execution first")]
    InUse(Ipv4Addr, String),
}

/// Whether an address can be leased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpState {
    /// Free to lease.
    Available,
    /// Leased, or taken out by an administrator.
    Unavailable,
}

/// One address as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpInfo {
    /// The address.
    pub ip: Ipv4Addr,
    /// Available or not.
    pub state: IpState,
    /// Who holds it: an execution (or `warm`), while leased.
    pub holder: Option<String>,
    /// Taken out of the pool by an administrator.
    pub reserved: bool,
}

#[derive(Default)]
struct Inner {
    leased: BTreeMap<u32, String>,
    reserved: BTreeSet<u32>,
}

/// The pool.
pub struct IpPool {
    cfg: Ip4Config,
    inner: Mutex<Inner>,
}

/// An address borrowed from the pool, given back when dropped.
pub struct Lease {
    pool: Arc<IpPool>,
    addr: Ipv4Addr,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lease({})", self.addr)
    }
}

impl Lease {
    /// The address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The pool's settings (prefix length, gateway, bridge).
    pub fn config(&self) -> &Ip4Config {
        &self.pool.cfg
    }

    /// Records who uses the address now (a warm sandbox taken by an execution).
    pub fn set_holder(&self, holder: &str) {
        let mut inner = self.pool.inner.lock().expect("pool lock");
        inner
            .leased
            .insert(u32::from(self.addr), holder.to_string());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut inner = self.pool.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.leased.remove(&u32::from(self.addr));
    }
}

fn mask(prefix_len: u8) -> u32 {
    if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len))
    }
}

impl IpPool {
    /// A pool for `cfg`, checked: the range and the gateway inside one subnet,
    /// neither its network nor its broadcast address, the gateway outside the
    /// range.
    pub fn new(cfg: Ip4Config) -> Result<Self, PoolError> {
        let bad = |m: String| Err(PoolError::Invalid(m));
        if !(8..=30).contains(&cfg.prefix_len) {
            return bad(format!(
                "prefix length {} is not between 8 and 30",
                cfg.prefix_len
            ));
        }
        if cfg.count == 0 {
            return bad("the pool has no addresses (count is 0)".into());
        }
        if cfg.bridge.is_empty() || cfg.bridge.len() > 15 {
            return bad(format!(
                "bridge name `{}` must be 1-15 characters",
                cfg.bridge
            ));
        }
        let m = mask(cfg.prefix_len);
        let first = u32::from(cfg.first);
        let Some(last) = first.checked_add(cfg.count - 1) else {
            return bad("the range runs past 255.255.255.255".into());
        };
        let net = first & m;
        let broadcast = net | !m;
        if last & m != net || u32::from(cfg.gateway) & m != net {
            return bad(format!(
                "{}..{} and the gateway {} are not all in {}/{}",
                cfg.first,
                Ipv4Addr::from(last),
                cfg.gateway,
                Ipv4Addr::from(net),
                cfg.prefix_len
            ));
        }
        if first == net || last == broadcast {
            return bad("the range includes the subnet's network or broadcast address".into());
        }
        if (first..=last).contains(&u32::from(cfg.gateway)) {
            return bad(format!("the gateway {} is inside the range", cfg.gateway));
        }
        Ok(Self {
            cfg,
            inner: Mutex::default(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &Ip4Config {
        &self.cfg
    }

    fn range(&self) -> std::ops::RangeInclusive<u32> {
        let first = u32::from(self.cfg.first);
        first..=first + (self.cfg.count - 1)
    }

    /// Leases the lowest free address to `holder`.
    pub fn lease(self: &Arc<Self>, holder: &str) -> Result<Lease, PoolError> {
        let mut inner = self.inner.lock().expect("pool lock");
        let free = self
            .range()
            .find(|a| !inner.leased.contains_key(a) && !inner.reserved.contains(a))
            .ok_or(PoolError::Exhausted(self.cfg.count))?;
        inner.leased.insert(free, holder.to_string());
        Ok(Lease {
            pool: self.clone(),
            addr: Ipv4Addr::from(free),
        })
    }

    /// Every address (or those in `state`), in order.
    pub fn list(&self, state: Option<IpState>) -> Vec<IpInfo> {
        let inner = self.inner.lock().expect("pool lock");
        self.range()
            .map(|a| {
                let holder = inner.leased.get(&a).cloned();
                let reserved = inner.reserved.contains(&a);
                IpInfo {
                    ip: Ipv4Addr::from(a),
                    state: if holder.is_some() || reserved {
                        IpState::Unavailable
                    } else {
                        IpState::Available
                    },
                    holder,
                    reserved,
                }
            })
            .filter(|i| state.is_none_or(|s| s == i.state))
            .collect()
    }

    /// Takes an address out of the pool (`Unavailable`) or puts it back
    /// (`Available`). A leased address cannot be made available: its execution
    /// still uses it.
    pub fn set_state(&self, ip: Ipv4Addr, state: IpState) -> Result<IpInfo, PoolError> {
        let a = u32::from(ip);
        if !self.range().contains(&a) {
            return Err(PoolError::NotInPool(ip));
        }
        {
            let mut inner = self.inner.lock().expect("pool lock");
            match state {
                IpState::Unavailable => {
                    inner.reserved.insert(a);
                }
                IpState::Available => {
                    if let Some(holder) = inner.leased.get(&a) {
                        return Err(PoolError::InUse(ip, holder.clone()));
                    }
                    inner.reserved.remove(&a);
                }
            }
        }
        Ok(self
            .list(None)
            .into_iter()
            .find(|i| i.ip == ip)
            .expect("in range"))
    }

    /// How many addresses can be leased now.
    pub fn available(&self) -> usize {
        self.list(Some(IpState::Available)).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(first: &str, count: u32) -> Ip4Config {
        Ip4Config {
            bridge: "skybr0".into(),
            first: first.parse().unwrap(),
            count,
            prefix_len: 24,
            gateway: "10.77.0.1".parse().unwrap(),
        }
    }

    #[test]
    fn leases_come_back_when_dropped() {
        let pool = Arc::new(IpPool::new(cfg("10.77.0.10", 2)).unwrap());
        let a = pool.lease("e1").unwrap();
        let b = pool.lease("e2").unwrap();
        assert_eq!(
            (a.addr().to_string(), b.addr().to_string()),
            ("10.77.0.10".into(), "10.77.0.11".into())
        );
        assert_eq!(pool.lease("e3").unwrap_err(), PoolError::Exhausted(2));
        assert_eq!(
            pool.list(Some(IpState::Unavailable))[0].holder.as_deref(),
            Some("e1")
        );
        drop(a);
        assert_eq!(pool.available(), 1);
        let c = pool.lease("e3").unwrap();
        assert_eq!(c.addr().to_string(), "10.77.0.10");
        drop((b, c));
        assert_eq!(pool.available(), 2);
    }

    #[test]
    fn administrators_take_addresses_out_and_put_them_back() {
        let pool = Arc::new(IpPool::new(cfg("10.77.0.10", 2)).unwrap());
        let ip: Ipv4Addr = "10.77.0.10".parse().unwrap();
        let info = pool.set_state(ip, IpState::Unavailable).unwrap();
        assert!(info.reserved && info.state == IpState::Unavailable);
        let held = pool.lease("e").unwrap();
        assert_eq!(held.addr().to_string(), "10.77.0.11");
        assert_eq!(pool.lease("e1").unwrap_err(), PoolError::Exhausted(2));
        pool.set_state(ip, IpState::Available).unwrap();
        let lease = pool.lease("e2").unwrap();
        assert_eq!(lease.addr(), ip);
        assert!(
            matches!(pool.set_state(ip, IpState::Available), Err(PoolError::InUse(_, h)) if h == "e2")
        );
        assert!(matches!(
            pool.set_state("10.77.1.1".parse().unwrap(), IpState::Available),
            Err(PoolError::NotInPool(_))
        ));
    }

    #[test]
    fn bad_pools_are_refused() {
        for (first, count, why) in [
            ("10.77.0.10", 0, "no addresses"),
            ("10.77.0.250", 10, "not all in"),
            ("10.77.0.0", 5, "network or broadcast"),
            ("10.77.0.1", 5, "gateway"),
        ] {
            let e = IpPool::new(cfg(first, count)).err().expect(why).to_string();
            assert!(e.contains(why), "{e}");
        }
    }
}
