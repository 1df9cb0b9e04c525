//! Debug aid: runs a VOPR seed and prints every INTEGRITY hash between two nodes that
//! differs from the true tree. `cargo run --example tap_integrity -- SEED FROM TO`
use ppspp_core::wire::{ChunkAddressing, Message, WireParams, decode_datagram};
use ppspp_sim::Simulation;
use ppspp_sim::vopr;

fn main() {
    let a: Vec<u64> = std::env::args()
        .skip(1)
        .map(|x| x.parse().expect("number"))
        .collect();
    let (seed, from, to) = (a[0], a[1] as u32, a[2] as u32);
    let sc = vopr::scenario(seed);
    let mut sim = Simulation::new(sc.clone()).expect("builds");
    let tree = sim.tree().clone();
    let wire = WireParams::new(ChunkAddressing::ChunkRange32, sc.hash);
    sim.set_tap(Box::new(move |t, f, d, data| {
        if (from != 999 && f != from) || d != to {
            return;
        }
        let Ok((ch, msgs)) = decode_datagram(data.clone(), &wire) else {
            return;
        };
        let mut line = format!(
            "{:.6} {f}->{d} ch {:08x}:",
            t.as_micros() as f64 / 1e6,
            ch.0
        );
        for m in msgs.flatten() {
            match &m {
                Message::Integrity(i) => {
                    let bin = i
                        .spec
                        .to_chunks(512)
                        .map(|(a, b)| ppspp_core::Bin::from_chunk_range(a, b));
                    let ok = match &i.spec {
                        ppspp_core::wire::ChunkSpec::Chunks { start, end } => {
                            ppspp_core::Bin::from_chunk_range(*start, *end)
                                .and_then(|b| tree.hash(b))
                                .map(|h| h == i.hash)
                        }
                        _ => None,
                    };
                    line += &format!(" INTEGRITY {:?} ok={ok:?} ({bin:?})", i.spec);
                }
                other => line += &format!(" {:?}", other.message_type()),
            }
        }
        println!("{line}");
    }));
    let r = sim.run();
    println!("{}", r);
}
