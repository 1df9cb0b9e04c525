//! Hybrid delivery in the simulator: an HTTP origin beside the peers, driven by the core's
//! own origin logic.

use ppspp_core::time::Duration;
use ppspp_sim::origin::OriginSpec;
use ppspp_sim::viewer::Viewing;
use ppspp_sim::{Scenario, Simulation};

/// Viewers at 250 KB/s of 2 MB joining over 3 s; a seeder of only 20 KB/s, so the origin
/// (if any) carries what peers cannot.
fn scenario(origin: Option<OriginSpec>) -> Scenario {
    Scenario::builder()
        .seed(11)
        .peers(12)
        .content_size(2_000_000)
        .join_window(Duration::from_secs(3))
        .seeder_rates(20_000, 20_000)
        .churn(None)
        .loss(0.0)
        .viewing(Some(Viewing::at(250_000)))
        .origin(origin)
        .duration(Duration::from_secs(300))
        .build()
}

fn run(sc: Scenario) -> ppspp_sim::Report {
    let r = Simulation::new(sc).expect("content builds").run();
    assert!(r.safe(), "safety violations\n{r}");
    r
}

#[test]
fn an_origin_carries_what_a_slow_seeder_cannot_and_peers_share_the_rest() {
    let without = run(scenario(None));
    let with = run(scenario(Some(OriginSpec::new(10_000_000))));
    assert_eq!(with.peers_complete, 12, "{with}");
    let o = with.origin.as_ref().expect("origin report");
    // Peers did most of the delivering even so: the origin served well under one copy per
    // viewer, and peer efficiency counts it.
    assert!(o.bytes > 0, "{with}");
    assert!(o.bytes < 12 * 2_000_000 / 2, "{with}");
    let leechers = with.upload.leechers_bytes as f64;
    let all = (with.upload.seeders_bytes + with.upload.leechers_bytes + o.bytes) as f64;
    assert!(
        (with.peer_efficiency - leechers / all).abs() < 1e-6,
        "{with}"
    );
    // Viewers stall less with the origin than with the slow seeder alone.
    let (vw, vo) = (
        with.viewing.as_ref().unwrap(),
        without.viewing.as_ref().unwrap(),
    );
    assert!(
        vo.stalls > 0 && vw.stalls < vo.stalls,
        "stalls with the origin {} without {}\n{with}\n{without}",
        vw.stalls,
        vo.stalls
    );
}

#[test]
fn an_origin_outage_is_retried_and_the_swarm_completes() {
    let mut spec = OriginSpec::new(10_000_000);
    spec.down = Some(Duration::from_secs(1)..Duration::from_secs(4));
    let r = run(scenario(Some(spec)));
    assert_eq!(r.peers_complete, 12, "{r}");
    let o = r.origin.as_ref().unwrap();
    assert!(o.failures > 0 && o.bytes > 0, "{r}");
}

#[test]
fn viewers_whose_peers_keep_up_only_just_do_not_stall_with_an_origin() {
    // Peers upload about the media rate (a seeder at the bitrate, viewers at it): without
    // a rule that refills the critical second from the origin when the player is about to
    // run dry, the buffer stays near empty and a hiccup stalls (this scenario stalled before).
    let sc = Scenario::builder()
        .seed(1)
        .peers(8)
        .content_size(4 << 20)
        .join_window(Duration::from_secs(3))
        .seeder_rates(250_000, 2_000_000)
        .leecher_rates(250_000, 2_000_000)
        .churn(None)
        .viewing(Some(Viewing::at(250_000)))
        .origin(Some(OriginSpec::new(10_000_000)))
        .duration(Duration::from_secs(300))
        .build();
    let r = run(sc);
    assert_eq!(r.peers_complete, 8, "{r}");
    let v = r.viewing.as_ref().unwrap();
    assert_eq!(v.stalls, 0, "{r}");
    assert!(v.startup_s.max <= 1.0, "{r}");
    // The origin filled gaps, not the stream: peers still delivered a good share.
    assert!(r.peer_efficiency > 0.35, "{r}");
}
