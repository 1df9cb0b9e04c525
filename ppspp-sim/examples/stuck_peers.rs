//! Debug aid for liveness failures: runs a VOPR seed and, every 20 simulated seconds, prints
//! each incomplete node's peers: whether they choke it, what they have that it lacks, and the
//! channel counters. `cargo run --release -p ppspp-sim --example stuck_peers -- SEED`
use ppspp_sim::Simulation;
use ppspp_sim::vopr;
fn main() {
    let seed: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("usage: stuck_peers SEED");
    let sc = vopr::scenario(seed);
    let mut sim = Simulation::new(sc.clone()).expect("builds");
    let mut last = 0;
    let limit = ppspp_core::Instant::from_secs(400);
    while sim.step(limit) {
        let t = sim.now().as_micros() / 1_000_000;
        if t >= last + 20 {
            last = t;
            for id in 0..40u32 {
                let Some(ep) = sim.endpoint(id) else { continue };
                for h in ep.swarms() {
                    let sw = ep.swarm(h).unwrap();
                    if sw.is_complete() {
                        continue;
                    }
                    println!(
                        "t={t} node {id}: verified {} / {:?}, peers {}",
                        sw.verified().count(),
                        sw.chunk_count(),
                        sw.connected_peers()
                    );
                    for p in sw.peers() {
                        let pr = ep.peer(p).unwrap();
                        let st = pr.stats();
                        let missing_they_have = pr
                            .peer_has()
                            .difference_ranges(sw.verified())
                            .map(|r| r.end - r.start)
                            .sum::<u64>();
                        println!(
                            "   peer {} choke={:?} conn={} has={} useful={} in={} out={} dgin={} dgout={} rtt={:?} cwnd={} flight={} req_out={}",
                            pr.remote(),
                            pr.choking(),
                            pr.is_connected(),
                            pr.peer_has().count(),
                            missing_they_have,
                            st.content_in,
                            st.content_out,
                            st.datagrams_in,
                            st.datagrams_out,
                            st.rtt,
                            st.cwnd,
                            st.in_flight,
                            st.messages_out.get(ppspp_core::wire::MessageType::Request)
                        );
                    }
                }
            }
        }
    }
}
