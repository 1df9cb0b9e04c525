//! Encode and decode tests from RFC 7846's message examples (`testdata/` holds them verbatim,
//! indentation aside), and the error codes of malformed requests.

use super::*;

fn example(name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

fn connect(r: &Request) -> &Connect {
    match &r.body {
        RequestBody::Connect(c) => c,
        other => panic!("not a CONNECT: {other:?}"),
    }
}

#[test]
fn seeder_connect_example_decodes() {
    let r = Request::decode(&example("connect_seeder")).unwrap();
    assert_eq!(r.transaction_id, "12345");
    assert_eq!(r.peer_id, "656164657220");
    let c = connect(&r);
    assert!(c.peer_num.is_none());
    // A single peer_addr object where an array is defined.
    assert_eq!(c.peer_addr.len(), 1);
    let a = &c.peer_addr[0];
    assert_eq!(a.socket_addr(), "192.0.2.2:80".parse().unwrap());
    assert_eq!((a.priority, a.addr_type), (1, AddrType::Host));
    assert_eq!(a.connection.as_deref(), Some("wired"));
    assert_eq!(a.asn.as_deref(), Some("45645"));
    let ids: Vec<_> = c.swarm_action.iter().map(|s| s.swarm_id.as_str()).collect();
    assert_eq!(ids, ["1111", "2222"]);
    assert!(
        c.swarm_action
            .iter()
            .all(|s| s.action == Action::Join && s.peer_mode == PeerMode::Seeder)
    );
}

#[test]
fn leech_connect_example_decodes_quoted_integers_and_a_single_action() {
    let r = Request::decode(&example("connect_leech")).unwrap();
    assert_eq!(r.transaction_id, "12345.0");
    let c = connect(&r);
    let n = c.peer_num.as_ref().unwrap();
    assert_eq!(n.peer_count, 5);
    assert_eq!(n.ability_nat.as_deref(), Some("STUN"));
    // "5", "200", "600": strings in the example, integers in the definition.
    assert_eq!(
        (n.concurrent_links, n.online_time, n.upload_bandwidth),
        (Some(5), Some(200), Some(600))
    );
    assert_eq!(c.peer_addr.len(), 2);
    assert_eq!(c.peer_addr[1].ip, "2001:db8::2".parse::<IpAddr>().unwrap());
    assert_eq!(c.peer_addr[1].peer_protocol.as_deref(), Some("PPSP-PP"));
    assert_eq!(
        c.swarm_action,
        [SwarmAction {
            swarm_id: "1111".into(),
            action: Action::Join,
            peer_mode: PeerMode::Leech
        }]
    );
}

#[test]
fn switch_connect_example_leaves_and_joins() {
    let r = Request::decode(&example("connect_switch")).unwrap();
    let c = connect(&r);
    assert!(c.peer_addr.is_empty());
    let acts: Vec<_> = c
        .swarm_action
        .iter()
        .map(|s| (s.swarm_id.as_str(), s.action))
        .collect();
    assert_eq!(acts, [("1111", Action::Leave), ("2222", Action::Join)]);
}

#[test]
fn find_example_with_fields_at_the_root_decodes() {
    let r = Request::decode(&example("find")).unwrap();
    match r.body {
        RequestBody::Find { swarm_id, peer_num } => {
            assert_eq!(swarm_id, "1111");
            assert_eq!(peer_num.unwrap().peer_count, 5);
        }
        other => panic!("not a FIND: {other:?}"),
    }
}

#[test]
fn stat_report_example_decodes_its_single_capitalised_stat() {
    let r = Request::decode(&example("stat_report")).unwrap();
    assert_eq!(r.peer_id, "656164657221");
    let RequestBody::StatReport { stats } = r.body else {
        panic!("not a STAT_REPORT")
    };
    assert_eq!(
        stats,
        [StreamStats {
            swarm_id: "1111".into(),
            uploaded_bytes: 512,
            downloaded_bytes: 768,
            available_bandwidth: 1_024_000,
            concurrent_links: 5,
        }]
    );
}

#[test]
fn response_examples_decode() {
    let r = Response::decode(&example("connect_response")).unwrap();
    assert_eq!(r.response_type, ResponseType::Successful);
    assert_eq!(r.error_code, ErrorCode::NoError);
    // The reflexive address in the example has no `type`: read as HOST.
    let me = r.peer_addr.as_ref().unwrap();
    assert_eq!(me.socket_addr(), "198.51.100.1:80".parse().unwrap());
    assert_eq!(me.addr_type, AddrType::Host);
    // swarm_result is a single object in the example.
    assert_eq!(r.swarm_result.len(), 1);
    assert_eq!(r.swarm_result[0].swarm_id, "2222");
    let peers = r.swarm_result[0].peers.as_ref().unwrap();
    assert_eq!(peers[1].peer_id, "3332001256741");
    assert_eq!(peers[1].peer_addr.addr_type, AddrType::Reflexive);
    assert_eq!(
        r.peer_addrs(),
        [
            "198.51.100.22:80".parse().unwrap(),
            "198.51.100.201:80".parse().unwrap()
        ]
    );

    let f = Response::decode(&example("find_response")).unwrap();
    assert_eq!(f.transaction_id, "12345");
    assert_eq!(f.peer_addrs().len(), 3);
    assert_eq!(
        f.swarm_result[0].peers.as_ref().unwrap()[0]
            .peer_addr
            .connection
            .as_deref(),
        Some("wireless")
    );

    let s = Response::decode(&example("stat_report_response")).unwrap();
    assert_eq!(s.swarm_result[0].result, ResponseType::Successful);
    assert!(s.swarm_result[0].peers.is_none());
    assert!(s.peer_addrs().is_empty());
}

#[test]
fn examples_round_trip_through_the_formal_form() {
    for name in [
        "connect_seeder",
        "connect_leech",
        "connect_switch",
        "find",
        "stat_report",
    ] {
        let r = Request::decode(&example(name)).unwrap();
        let again = Request::decode(&r.encode()).unwrap();
        assert_eq!(again, r, "{name}");
    }
    for name in ["connect_response", "find_response", "stat_report_response"] {
        let r = Response::decode(&example(name)).unwrap();
        assert_eq!(Response::decode(&r.encode()).unwrap(), r, "{name}");
    }
}

#[test]
fn encoding_writes_the_formal_form() {
    let find = Request::decode(&example("find")).unwrap().encode();
    let v = json(&find);
    let inner = &v[ROOT];
    assert_eq!(inner["version"], 1);
    assert_eq!(inner["find"]["swarm_id"], "1111");
    assert_eq!(inner["find"]["peer_num"]["concurrent_links"], 5);
    assert!(
        inner.get("swarm_id").is_none(),
        "FIND fields nested, not at the root"
    );

    let leech = json(&Request::decode(&example("connect_leech")).unwrap().encode());
    assert!(leech[ROOT]["connect"]["swarm_action"].is_array());
    assert!(leech[ROOT]["connect"]["peer_addr"].is_array());

    let seeder = json(
        &Request::decode(&example("connect_seeder"))
            .unwrap()
            .encode(),
    );
    assert!(seeder[ROOT]["connect"]["peer_addr"].is_array());

    let stat = json(&Request::decode(&example("stat_report")).unwrap().encode());
    assert!(stat[ROOT]["stat_report"]["stat"].is_array());
    assert!(stat[ROOT]["stat_report"].get("Stat").is_none());

    let resp = json(
        &Response::decode(&example("connect_response"))
            .unwrap()
            .encode(),
    );
    let results = &resp[ROOT]["swarm_result"];
    assert!(results.is_array());
    assert!(results[0]["peer_group"]["peer_info"].is_array());
    assert_eq!(resp[ROOT]["peer_addr"]["type"], "HOST");
    assert_eq!(resp[ROOT]["error_code"], 0);
}

fn err(body: &str) -> DecodeError {
    Request::decode(body.as_bytes()).expect_err(body)
}

#[test]
fn malformed_requests_get_the_rfc_error_codes() {
    for body in [
        "",
        "not json",
        "[]",
        "{}",
        r#"{"PPSPTrackerProtocol": 5}"#,
        r#"{"PPSPTrackerProtocol": {"request_type": "FIND"}}"#,
    ] {
        assert_eq!(err(body).code, ErrorCode::BadRequest, "{body:?}");
    }
    let e = err(
        r#"{"PPSPTrackerProtocol": {"version": 2, "request_type": "FIND",
            "transaction_id": "7", "peer_id": "p", "find": {"swarm_id": "s"}}}"#,
    );
    assert_eq!(e.code, ErrorCode::UnsupportedVersion);
    assert_eq!(e.transaction_id.as_deref(), Some("7"));
    let resp = json(&e.response().encode());
    assert_eq!(resp[ROOT]["response_type"], 1);
    assert_eq!(resp[ROOT]["error_code"], 2);
    assert_eq!(resp[ROOT]["transaction_id"], "7");
    assert!(resp[ROOT].get("swarm_result").is_none() && resp[ROOT].get("peer_addr").is_none());

    let base = |data: &str| {
        format!(
            r#"{{"PPSPTrackerProtocol": {{"version": 1, "transaction_id": "9", "peer_id": "p", {data}}}}}"#
        )
    };
    for data in [
        r#""request_type": "DANCE""#,
        r#""request_type": "CONNECT""#,
        r#""request_type": "CONNECT", "connect": {"swarm_action": []}"#,
        r#""request_type": "CONNECT", "connect": {"swarm_action": {"swarm_id": "s", "action": "JUMP", "peer_mode": "LEECH"}}"#,
        r#""request_type": "CONNECT", "connect": {"swarm_action": {"swarm_id": "s", "action": "JOIN", "peer_mode": "LEECH"},
            "peer_addr": {"ip_address": {"address_type": "ipv6", "address": "192.0.2.1"}, "port": 1, "priority": 1, "type": "HOST"}}"#,
        r#""request_type": "CONNECT", "connect": {"swarm_action": {"swarm_id": "s", "action": "JOIN", "peer_mode": "LEECH"},
            "peer_addr": {"ip_address": {"address_type": "ipv4", "address": "192.0.2.1"}, "port": 70000, "priority": 1, "type": "HOST"}}"#,
        r#""request_type": "FIND""#,
        r#""request_type": "FIND", "find": {"swarm_id": "s", "peer_num": {"peer_count": -1}}"#,
        r#""request_type": "STAT_REPORT", "stat_report": {"type": "STREAM_STATS", "stat": [{"uploaded_bytes": 1}]}"#,
    ] {
        let e = err(&base(data));
        assert_eq!(e.code, ErrorCode::BadRequest, "{data}");
        assert_eq!(e.transaction_id.as_deref(), Some("9"), "{data}");
    }
    let big = format!(r#"{{"x": "{}"}}"#, "a".repeat(MAX_BODY));
    assert_eq!(err(&big).code, ErrorCode::BadRequest);
}

#[test]
fn keep_alives_and_unknown_members_are_accepted() {
    let r = Request::decode(
        br#"{"PPSPTrackerProtocol": {"version": "1", "request_type": "STAT_REPORT",
            "transaction_id": 12, "peer_id": "p", "future": {"x": 1}}}"#,
    )
    .unwrap();
    assert_eq!(r.transaction_id, "12");
    assert_eq!(r.body, RequestBody::StatReport { stats: Vec::new() });
    let other = Request::decode(
        br#"{"PPSPTrackerProtocol": {"version": 1, "request_type": "STAT_REPORT",
            "transaction_id": "1", "peer_id": "p", "stat_report": {"type": "LINK_STATUS", "stat": 3}}}"#,
    )
    .unwrap();
    assert_eq!(other.body, RequestBody::StatReport { stats: Vec::new() });
}
