//! Telling the engine where the gateway's reader is, so the chunks a player needs next are
//! fetched first ([`Endpoint::set_playback`](ppspp_core::Endpoint::set_playback)): in order
//! from the reader's position, with rarest-first going on outside the window.

use ppspp_core::{Playback, SwarmHandle};

use crate::tokio_driver::AsyncDriver;

/// The reader of `swarm` is at `chunk` (a new request, a seek, or the reader moving on),
/// playing `bitrate` bytes per second if known (then the window's chunks have deadlines).
pub(crate) fn set(driver: &mut AsyncDriver, swarm: SwarmHandle, chunk: u64, bitrate: Option<u64>) {
    let now = driver.now();
    let mut p = Playback::at(chunk);
    if let Some(b) = bitrate {
        p = p.with_bitrate(b);
    }
    driver.endpoint_mut().set_playback(now, swarm, p);
}

/// Nobody reads `swarm` any more: the swarm's own picker again.
pub(crate) fn clear(driver: &mut AsyncDriver, swarm: SwarmHandle) {
    let now = driver.now();
    driver.endpoint_mut().clear_playback(now, swarm);
}
