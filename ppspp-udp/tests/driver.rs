//! The library drivers in process: a seeder and a downloader on two threads (blocking
//! driver) or one tokio runtime (feature `tokio`).

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppspp_core::hash::HashAlgorithm;
use ppspp_core::merkle::MerkleTree;
use ppspp_core::{Event, MemoryStore, SwarmConfig};
use ppspp_udp::store::FileStore;
use ppspp_udp::{Driver, DriverConfig};

fn content(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[1])
        .collect()
}

#[test]
fn blocking_drivers_move_a_file_over_ipv4_loopback() {
    let data = content(300_000);
    let tree = Arc::new(MerkleTree::build(HashAlgorithm::Sha256, 1024, &data).unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let (seed_tree, seed_data) = (tree.clone(), data.clone());
    let seeder = std::thread::spawn(move || {
        let mut d = Driver::bind("127.0.0.1:0".parse().unwrap(), DriverConfig::new()).unwrap();
        let now = d.now();
        let store = MemoryStore::with_content(1024, seed_data);
        d.endpoint_mut()
            .add_swarm(now, SwarmConfig::seed(seed_tree), Box::new(store))
            .unwrap();
        tx.send((d.local_addr(), d.stop_handle())).unwrap();
        d.run_until(None, |_, _| ControlFlow::<()>::Continue(()))
            .unwrap();
        d.shutdown().unwrap();
    });
    let (addr, stop) = rx.recv().unwrap();

    let dir = std::env::temp_dir().join(format!("ppspp-driver-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out");
    let store = FileStore::create_download(&dir.join("out.part"), &out, 1024, false).unwrap();
    let mut d = Driver::bind("127.0.0.1:0".parse().unwrap(), DriverConfig::new()).unwrap();
    let now = d.now();
    let swarm = d
        .endpoint_mut()
        .add_swarm(
            now,
            SwarmConfig::leech(tree.root_hash(), HashAlgorithm::Sha256, 1024),
            Box::new(store.clone()),
        )
        .unwrap();
    let now = d.now();
    d.endpoint_mut().connect(now, swarm, addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = d
        .run_until(Some(deadline), |_, ev| match ev {
            Event::SwarmComplete { .. } => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        })
        .unwrap();
    assert!(done.is_some(), "no completion within 30 s");
    assert!(store.is_completed());
    assert!(std::fs::read(&out).unwrap() == data);
    let stats = d.stats();
    assert!(stats.socket.datagrams_in > 290);
    assert_eq!(stats.socket.kernel_drops, Some(0));
    d.shutdown().unwrap();
    stop.stop();
    seeder.join().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_drivers_move_content_over_ipv6_or_ipv4_loopback() {
    use ppspp_udp::tokio_driver::AsyncDriver;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let local: std::net::SocketAddr = if std::net::UdpSocket::bind("[::1]:0").is_ok() {
            "[::1]:0".parse().unwrap()
        } else {
            "127.0.0.1:0".parse().unwrap()
        };
        let data = content(100_000);
        let tree = Arc::new(MerkleTree::build(HashAlgorithm::Sha1, 1024, &data).unwrap());
        let mut seeder = AsyncDriver::bind(local, DriverConfig::new()).unwrap();
        let now = seeder.now();
        seeder
            .endpoint_mut()
            .add_swarm(
                now,
                SwarmConfig::seed(tree.clone()),
                Box::new(MemoryStore::with_content(1024, data.clone())),
            )
            .unwrap();
        let mut getter = AsyncDriver::bind(local, DriverConfig::new()).unwrap();
        let now = getter.now();
        let swarm = getter
            .endpoint_mut()
            .add_swarm(
                now,
                SwarmConfig::leech(tree.root_hash(), HashAlgorithm::Sha1, 1024),
                Box::new(MemoryStore::new(1024)),
            )
            .unwrap();
        let now = getter.now();
        getter
            .endpoint_mut()
            .connect(now, swarm, seeder.local_addr())
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let seeding = seeder.run_until(Some(deadline), |_, _| ControlFlow::<()>::Continue(()));
        let getting = getter.run_until(Some(deadline), |_, ev| match ev {
            Event::SwarmComplete { .. } => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        });
        tokio::select! {
            r = getting => assert!(r.unwrap().is_some(), "no completion within 30 s"),
            _ = seeding => panic!("the seeder stopped first"),
        }
        let s = getter.endpoint().swarm(swarm).unwrap();
        assert!(s.is_complete());
        assert_eq!(s.content_len(), Some(100_000));
        getter.shutdown().await.unwrap();
    });
}
