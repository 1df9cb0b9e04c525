//! The shared test kit (feature `testing`): what core tests, fuzz targets, benchmarks and the
//! simulator need to run endpoints without a network, in one place.
//!
//! - [`Mesh`]: N endpoints joined by an in-memory network on a virtual clock, with per-link
//!   delay, jitter, loss, duplication and MTU ([`LinkConfig`]) and datagram [`Filter`]s that
//!   observe, alter or drop traffic; [`drain`] is the endpoint's drain contract as one call.
//! - [`content`], [`FixedContent`], [`SyntheticContent`], [`PatternContent`]: deterministic
//!   content, as bytes or chunk by chunk.
//! - [`CheckingStore`]: a store that refuses writes differing from the expected content and
//!   gives the bytes back.
//! - [`endpoint_config`], [`seeder`], [`leecher`] (and `_with` forms that adjust the swarm's
//!   configuration): a test configuration and one-call swarms.
//!
//! Like the rest of the crate it needs only `alloc`: no clock, no OS randomness (every draw
//! comes from a seeded ChaCha generator), no threads.

mod content;
mod net;
mod origin;
mod store;

use alloc::boxed::Box;
use alloc::sync::Arc;

pub use content::{Content, FixedContent, PatternContent, SyntheticContent, content, splitmix64};
pub use net::{Datagram, Filter, LinkConfig, Mesh, Node, Verdict, addr, drain, messages};
pub use origin::TestOrigin;
pub use store::CheckingStore;

use crate::config::{EndpointConfig, SwarmConfig};
use crate::event::SwarmHandle;
use crate::hash::HashAlgorithm;
use crate::merkle::MerkleTree;
use crate::store::MemoryStore;

/// A test endpoint configuration: seed `seed`, and a fixed Unix time at the clock's zero (for
/// live streams' timestamps), as no clock is read.
pub fn endpoint_config(seed: [u8; 32]) -> EndpointConfig {
    let mut cfg = EndpointConfig::new(seed);
    cfg.unix_time_at_zero(1_700_000_000_000_000);
    cfg
}

/// Makes node `node` of `mesh` seed `data` in chunks of `chunk` bytes hashed with `alg`;
/// returns the swarm and its tree.
///
/// # Panics
/// If the tree cannot be built or the swarm added.
pub fn seeder(
    mesh: &mut Mesh,
    node: usize,
    data: &[u8],
    chunk: u32,
    alg: HashAlgorithm,
) -> (SwarmHandle, Arc<MerkleTree>) {
    seeder_with(mesh, node, data, chunk, alg, |_| {})
}

/// [`seeder`], with `tweak` applied to the swarm's configuration first (upload slots, PEX, …).
///
/// # Panics
/// If the tree cannot be built or the swarm added.
pub fn seeder_with(
    mesh: &mut Mesh,
    node: usize,
    data: &[u8],
    chunk: u32,
    alg: HashAlgorithm,
    tweak: impl FnOnce(&mut SwarmConfig),
) -> (SwarmHandle, Arc<MerkleTree>) {
    let tree = Arc::new(MerkleTree::build(alg, chunk, data).expect("tree"));
    let mut cfg = SwarmConfig::seed(tree.clone());
    tweak(&mut cfg);
    let h = mesh.nodes[node]
        .ep
        .add_swarm(
            mesh.now,
            cfg,
            Box::new(MemoryStore::with_content(chunk, data.to_vec())),
        )
        .expect("seeder swarm");
    (h, tree)
}

/// Makes node `node` of `mesh` leech the swarm of `tree`, whose content is `data`, into a
/// [`CheckingStore`]; returns the swarm and a handle on the store.
///
/// # Panics
/// If the swarm cannot be added.
pub fn leecher(
    mesh: &mut Mesh,
    node: usize,
    tree: &MerkleTree,
    data: &[u8],
) -> (SwarmHandle, CheckingStore) {
    leecher_with(mesh, node, tree, data, |_| {})
}

/// [`leecher`], with `tweak` applied to the swarm's configuration first (PEX, picker, …).
///
/// # Panics
/// If the swarm cannot be added.
pub fn leecher_with(
    mesh: &mut Mesh,
    node: usize,
    tree: &MerkleTree,
    data: &[u8],
    tweak: impl FnOnce(&mut SwarmConfig),
) -> (SwarmHandle, CheckingStore) {
    let store = CheckingStore::new(FixedContent::new(data, tree.chunk_size()));
    let mut cfg = SwarmConfig::leech(tree.root_hash(), tree.algorithm(), tree.chunk_size());
    tweak(&mut cfg);
    let h = mesh.nodes[node]
        .ep
        .add_swarm(mesh.now, cfg, Box::new(store.clone()))
        .expect("leecher swarm");
    (h, store)
}
