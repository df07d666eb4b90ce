//! Choosing loopback ports for throwaway servers: any free port, or, for Redis Cluster
//! nodes, a client port whose cluster bus port (client port + 10000) is free as well.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::ops::RangeInclusive;
use std::sync::Mutex;

use crate::error::HarnessError;

/// Redis derives a cluster node's bus port by adding this to its client port.
pub(crate) const CLUSTER_BUS_OFFSET: u16 = 10_000;
/// Client ports for cluster nodes. With their bus ports (20000-32767) they stay below
/// Linux's default ephemeral range (32768-60999), so the outgoing connections of other
/// processes cannot take them between the probe and redis-server's bind.
const CLUSTER_CLIENT_PORTS: RangeInclusive<u16> = 10_000..=22_767;
/// Random probes before giving up; only a machine with nearly all of them taken fails.
const CLUSTER_PORT_PROBES: u32 = 500;

/// Cluster ports handed out by this process, never handed out again, so tests starting
/// clusters in parallel threads cannot pick the same port before either has bound it.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// How a server's client port is chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum PortChoice {
    /// Any free loopback port, picked by the kernel.
    #[default]
    Any,
    /// A free port whose cluster bus port (port + 10000) is free too.
    WithClusterBus,
}

impl PortChoice {
    /// A port that is free right now, as this choice demands.
    pub(crate) fn pick(self) -> Result<u16, HarnessError> {
        match self {
            PortChoice::Any => free_port(),
            PortChoice::WithClusterBus => free_port_with_cluster_bus(),
        }
    }
}

/// A loopback port nobody listens on right now (the kernel picks it).
pub(crate) fn free_port() -> Result<u16, HarnessError> {
    let probe = |e: io::Error| HarnessError::io("finding a free port on 127.0.0.1", e);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(probe)?;
    let port = listener.local_addr().map_err(probe)?.port();
    Ok(port)
}

/// A port `p` such that both `p` and `p + 10000` can be bound on 127.0.0.1 right now.
fn free_port_with_cluster_bus() -> Result<u16, HarnessError> {
    let (low, high) = (*CLUSTER_CLIENT_PORTS.start(), *CLUSTER_CLIENT_PORTS.end());
    let span = u64::from(high - low) + 1;
    // Seeded randomly per process: parallel test processes start from different places.
    let random = RandomState::new();
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for probe in 0..CLUSTER_PORT_PROBES {
        let offset = u16::try_from(random.hash_one(probe) % span).unwrap_or(0);
        let port = low + offset;
        if handed_out.contains(&port) {
            continue;
        }
        let bus = port + CLUSTER_BUS_OFFSET;
        let both_free = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            && TcpListener::bind((Ipv4Addr::LOCALHOST, bus)).is_ok();
        if both_free {
            handed_out.insert(port);
            return Ok(port);
        }
    }
    Err(HarnessError::io(
        "finding a free port pair (client port 10000-22767 and its cluster bus port + 10000) on 127.0.0.1",
        io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{CLUSTER_PORT_PROBES} random candidates were all taken"),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ports_and_their_bus_ports_are_free_and_never_repeat() {
        let mut seen = BTreeSet::new();
        for _ in 0..20 {
            let port = PortChoice::WithClusterBus.pick().expect("a free pair");
            assert!(CLUSTER_CLIENT_PORTS.contains(&port), "{port}");
            assert!(seen.insert(port), "{port} handed out twice");
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("client port free");
            TcpListener::bind((Ipv4Addr::LOCALHOST, port + CLUSTER_BUS_OFFSET))
                .expect("bus port free");
        }
    }
}
