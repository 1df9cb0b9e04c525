//! PEX poisoning and private swarms in the simulator (`Scenario::poisoners`,
//! `Scenario::private`, docs/membership.md): 20% of the leechers slip non-existent and
//! attacker addresses into PEX. Without certificates honest peers send datagrams to the
//! non-existent ones; in a private swarm none does, and every honest leecher completes within
//! 1.5 times the clean run's median.

use ppspp_core::time::Duration;
use ppspp_sim::{Scenario, Simulation};

fn crowd(poisoners: u32, private: bool) -> Scenario {
    Scenario::builder()
        .seed(2)
        .peers(100)
        .seeders(1)
        .content_size(1 << 20)
        .join_window(Duration::from_secs(1))
        .churn(None)
        .ppstp(true)
        .private(private)
        .poisoners(poisoners)
        .build()
}

#[test]
fn certificates_keep_honest_peers_away_from_poisoned_addresses() {
    let clean = Simulation::new(crowd(0, false)).unwrap().run();
    assert_eq!(clean.peers_complete, 100);
    assert!(clean.attack.is_none());

    let open = Simulation::new(crowd(20, false)).unwrap().run();
    let a = open.attack.as_ref().expect("attack report");
    assert!(a.pex_injected > 0);
    assert!(
        a.uncertified_contacts > 0,
        "control: without certificates the poisoning reaches honest peers"
    );
    assert_eq!(a.refused_uncertified, 0);

    let private = Simulation::new(crowd(20, true)).unwrap().run();
    assert!(private.violations.is_empty(), "{:?}", private.violations);
    let a = private.attack.as_ref().expect("attack report");
    assert!(a.pex_injected > 0);
    assert_eq!(
        a.uncertified_contacts, 0,
        "an honest peer contacted an uncertified address"
    );
    assert!(
        a.refused_uncertified > 0,
        "the poisoned addresses were not counted"
    );
    assert_eq!(a.bad_certificates, 0);
    assert_eq!((a.honest_complete, a.honest_leechers), (80, 80));
    assert!(
        private.completion_time_s.p50 <= clean.completion_time_s.p50 * 1.5,
        "private p50 {} vs clean {}",
        private.completion_time_s.p50,
        clean.completion_time_s.p50
    );
}
