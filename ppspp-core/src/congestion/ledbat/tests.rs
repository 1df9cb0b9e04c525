//! Tests of `congestion/ledbat.rs`.

use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

const MSS: u64 = 1_024;
const MS: i64 = 1_000;

/// The setup of VECTORS-IDEAS.md §7: MSS 1024, INIT_CWND = MIN_CWND = 2, GAIN 1,
/// TARGET 100 ms, ALLOWED_INCREASE 1, NULL filter, no slow start.
fn vector_config() -> LedbatConfig {
    let mut cfg = LedbatConfig::rfc6817();
    cfg.filter(DelayFilter::Null)
        .slow_start(false)
        .pacing(None)
        .flightsize_over_rtt(false);
    cfg
}

fn vector_ledbat() -> Ledbat {
    Ledbat::new(vector_config(), Instant::ZERO, MSS)
}

fn rtt_of(ms: u64) -> RttEstimator {
    let mut rtt = RttEstimator::default();
    rtt.update(Duration::from_millis(ms));
    rtt
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn set_window(l: &mut Ledbat, bytes: u64) {
    l.cwnd = bytes << FRACTION_BITS;
}

/// The exact window, fractional bytes included.
fn exact_window(l: &Ledbat) -> f64 {
    l.cwnd as f64 / 65_536.0
}

// ---- VECTORS-IDEAS.md §7, step by step ----

#[test]
fn vector_start() {
    let mut l = vector_ledbat();
    assert_eq!(l.window(), 2_048);
    assert_eq!(l.congestion_timeout(), Duration::from_secs(1));
    assert_eq!(l.base_delay(), None);
    assert_eq!(l.base.len(), 10);
    assert_eq!(l.cto_deadline(), None);
    l.on_sent(at(0), 1_024);
    l.on_sent(at(0), 1_024);
    assert_eq!(l.bytes_in_flight(), 2_048);
    assert!(!l.can_send(1));
    assert_eq!(l.next_send_time(at(0), 1_024), None);
}

/// Returns the controller after the first two ACKs of the vectors, with `d0` as base delay.
fn after_first_acks(d0: i64) -> Ledbat {
    let rtt = rtt_of(100);
    let mut l = vector_ledbat();
    l.on_sent(at(0), 2_048);
    // ACK of 1024 bytes at the base delay: off_target = 1, cwnd = 2048 + 1024·1024/2048.
    l.on_ack(at(100), 1_024, Some(d0), &rtt);
    assert_eq!(exact_window(&l), 2_560.0);
    assert_eq!(l.window(), 2_560); // below the cap flightsize + MSS = 3072
    assert_eq!(l.bytes_in_flight(), 1_024);
    assert_eq!(l.queuing_delay(), Some(Duration::ZERO));
    // +50 ms: off_target = 0.5 gives 2764.8, but the cap is 1024 + 1024 = 2048 (L-2.4-f).
    l.on_ack(at(110), 1_024, Some(d0 + 50 * MS), &rtt);
    assert_eq!(l.window(), 2_048);
    assert_eq!(l.bytes_in_flight(), 0);
    assert_eq!(l.queuing_delay(), Some(Duration::from_millis(50)));
    l
}

#[test]
fn vector_ack_at_base_then_clamped_by_flightsize() {
    after_first_acks(40 * MS);
}

#[test]
fn vector_queuing_above_target_shrinks_to_floor() {
    let rtt = rtt_of(100);
    let mut l = vector_ledbat();
    l.on_sent(at(0), 2_048);
    l.on_ack(at(100), 1_024, Some(0), &rtt);
    assert_eq!(l.window(), 2_560);
    l.on_sent(at(100), 2_560 - 1_024); // fill the window again
    // +150 ms: off_target = −0.5, cwnd = 2560 − 0.5·1024·1024/2560 = 2355.2.
    l.on_ack(at(200), 1_024, Some(150 * MS), &rtt);
    assert!(
        (exact_window(&l) - 2_355.2).abs() < 0.001,
        "{}",
        exact_window(&l)
    );
    assert_eq!(l.window(), 2_355);
    // Keep it up: the window falls to MIN_CWND·MSS and stays there.
    for i in 0..10 {
        l.on_sent(at(200 + i), l.window().saturating_sub(l.bytes_in_flight()));
        l.on_ack(at(200 + i), 1_024, Some(150 * MS), &rtt);
        assert!(l.window() >= 2_048);
    }
    assert_eq!(l.window(), 2_048);
}

#[test]
fn vector_loss_halves() {
    let rtt = rtt_of(100);
    let mut l = vector_ledbat();
    set_window(&mut l, 8_192);
    l.on_sent(at(0), 8_192);
    l.on_loss(at(10), 1_024, &rtt);
    assert_eq!(l.window(), 4_096);
    assert_eq!(l.bytes_in_flight(), 7_168);
    assert_eq!(l.metrics().loss_reductions, 1);
}

#[test]
fn vector_loss_respects_min_cwnd() {
    let rtt = rtt_of(100);
    let mut l = vector_ledbat();
    set_window(&mut l, 3_000);
    l.on_loss(at(10), 1_024, &rtt);
    // max(1500, 2048) = 2048
    assert_eq!(l.window(), 2_048);
}

#[test]
fn vector_second_loss_within_one_rtt_is_ignored() {
    let rtt = rtt_of(100);
    let mut l = vector_ledbat();
    set_window(&mut l, 8_192);
    l.on_loss(at(1_000), 1_024, &rtt);
    assert_eq!(l.window(), 4_096);
    l.on_loss(at(1_050), 1_024, &rtt);
    l.on_loss(at(1_099), 1_024, &rtt);
    assert_eq!(l.window(), 4_096);
    assert_eq!(l.metrics().loss_reductions, 1);
    // One RTT later a loss counts again.
    l.on_loss(at(1_100), 1_024, &rtt);
    assert_eq!(l.window(), 2_048);
    assert_eq!(l.metrics().loss_reductions, 2);
}

#[test]
fn vector_cto_one_mss_and_exponential_backoff() {
    let mut l = vector_ledbat();
    l.on_sent(at(0), 2_048);
    assert_eq!(l.cto_deadline(), Some(at(1_000)));
    // A spurious early call changes nothing.
    l.on_timeout(at(999));
    assert_eq!(l.window(), 2_048);
    l.on_timeout(at(1_000));
    assert_eq!(l.window(), 1_024);
    assert_eq!(l.congestion_timeout(), Duration::from_secs(2));
    assert_eq!(l.cto_deadline(), Some(at(3_000)));
    l.on_timeout(at(3_000));
    assert_eq!(l.congestion_timeout(), Duration::from_secs(4));
    assert_eq!(l.window(), 1_024);
    let mut now = at(3_000);
    let mut ctos = Vec::new();
    for _ in 0..10 {
        now = l.cto_deadline().unwrap();
        l.on_timeout(now);
        ctos.push(l.congestion_timeout().as_secs());
    }
    assert_eq!(ctos, [8, 16, 32, 60, 60, 60, 60, 60, 60, 60]);
    assert_eq!(l.metrics().timeouts, 12);
    // A loss at 1 MSS keeps 1 MSS: min(cwnd, ·).
    l.on_loss(now, 1_024, &rtt_of(100));
    assert_eq!(l.window(), 1_024);
    // The next ACK brings the CTO back to the RTO and the window to the floor.
    l.on_ack(
        now + Duration::from_millis(10),
        1_024,
        Some(0),
        &rtt_of(100),
    );
    assert_eq!(l.window(), 2_048);
    assert_eq!(l.congestion_timeout(), Duration::from_secs(1));
}

#[test]
fn cto_cap_can_be_raised_but_not_lowered() {
    let mut cfg = vector_config();
    cfg.max_cto(Duration::from_secs(10));
    assert_eq!(cfg.max_cto, Duration::from_secs(60));
    cfg.max_cto(Duration::from_secs(120));
    let mut l = Ledbat::new(cfg, Instant::ZERO, MSS);
    l.on_sent(at(0), 1_024);
    for _ in 0..20 {
        let d = l.cto_deadline().unwrap();
        l.on_timeout(d);
    }
    assert_eq!(l.congestion_timeout(), Duration::from_secs(120));
}

#[test]
fn no_cto_without_data_in_flight() {
    let mut l = vector_ledbat();
    l.on_timeout(Instant::from_secs(100));
    assert_eq!(l.window(), 2_048);
    l.on_sent(at(0), 1_024);
    l.on_ack(at(50), 1_024, Some(0), &rtt_of(50));
    assert_eq!(l.cto_deadline(), None);
    l.on_timeout(Instant::from_secs(100));
    assert_eq!(l.metrics().timeouts, 0);
    // The CTO clock restarts at each ACK while data remains in flight.
    l.on_sent(at(60), 2_048);
    assert_eq!(l.cto_deadline(), Some(at(1_060)));
    l.on_ack(at(500), 1_024, Some(0), &rtt_of(50));
    assert_eq!(l.cto_deadline(), Some(at(1_500)));
    l.on_loss(at(600), 1_024, &rtt_of(50));
    assert_eq!(l.cto_deadline(), None);
}

#[test]
fn vector_base_delay_rolls_over_by_minute() {
    let rtt = rtt_of(100);
    let mut l = vector_ledbat();
    let minute = |m: u64, s: u64| Instant::from_secs(m * 60 + s);
    // Minute 0: two samples share one slot, keeping the smaller.
    l.on_ack(minute(0, 1), 0, Some(500), &rtt);
    l.on_ack(minute(0, 59), 0, Some(300), &rtt);
    assert_eq!(l.base.back(), Some(&Some(300)));
    assert_eq!(l.base.iter().flatten().count(), 1);
    // Minute 1: a new slot, even for a larger sample; the minimum is over all slots.
    l.on_ack(minute(1, 0), 0, Some(900), &rtt);
    assert_eq!(l.base.iter().flatten().count(), 2);
    assert_eq!(l.base_delay(), Some(300));
    assert_eq!(l.queuing_delay(), Some(Duration::from_micros(600)));
    // Minutes 2..=10: the minute-0 slot falls out after 10 slots.
    for m in 2..=9 {
        l.on_ack(minute(m, 30), 0, Some(1_000), &rtt);
    }
    assert_eq!(l.base.iter().flatten().count(), 10);
    assert_eq!(l.base_delay(), Some(300));
    l.on_ack(minute(10, 0), 0, Some(1_000), &rtt);
    assert_eq!(l.base.len(), 10);
    assert_eq!(l.base_delay(), Some(900));
    // Two idle minutes leave +∞ in their slots.
    l.on_ack(minute(13, 0), 0, Some(2_000), &rtt);
    assert_eq!(
        l.base.iter().rev().take(3).copied().collect::<Vec<_>>(),
        [Some(2_000), None, None]
    );
    assert_eq!(l.base.len(), 10);
}

#[test]
fn vector_idle_base_history_starts_fresh() {
    let rtt = rtt_of(100);
    let mut l = vector_ledbat();
    l.on_ack(Instant::from_secs(5), 0, Some(100 * MS), &rtt);
    assert_eq!(l.base_delay(), Some(100 * MS));
    // Ten idle minutes: every slot is +∞, so a much larger delay becomes the new base.
    l.on_ack(Instant::from_secs(5 + 11 * 60), 0, Some(400 * MS), &rtt);
    assert_eq!(l.base.iter().flatten().count(), 1);
    assert_eq!(l.base_delay(), Some(400 * MS));
    assert_eq!(l.queuing_delay(), Some(Duration::ZERO));
    // A sample nine minutes later (eight idle ones) still sees the old minimum.
    let mut l = vector_ledbat();
    l.on_ack(Instant::from_secs(5), 0, Some(100 * MS), &rtt);
    l.on_ack(Instant::from_secs(5 + 9 * 60), 0, Some(400 * MS), &rtt);
    assert_eq!(l.base_delay(), Some(100 * MS));
    assert_eq!(l.queuing_delay(), Some(Duration::from_millis(300)));
}

#[test]
fn vector_negative_delays_only_differences_matter() {
    // The receiver's clock is 7 s behind: every sample is negative.
    let l = after_first_acks(-7_000 * MS);
    assert_eq!(l.base_delay(), Some(-7_000 * MS));
    // Extreme offsets neither overflow nor change the outcome.
    after_first_acks(i64::MIN / 2);
    after_first_acks(i64::MAX - 100 * MS);
    let mut l = vector_ledbat();
    l.on_ack(at(1), 0, Some(i64::MIN), &rtt_of(100));
    l.on_ack(at(2), 0, Some(i64::MAX), &rtt_of(100));
    assert_eq!(l.queuing_delay(), Some(Duration::from_micros(u64::MAX)));
    assert_eq!(l.window(), 2_048);
}

// ---- Filters ----

#[test]
fn min_filter_ignores_spikes_and_stale_samples() {
    let mut cfg = vector_config();
    cfg.filter(DelayFilter::Min).current_filter(4);
    let mut l = Ledbat::new(cfg, Instant::ZERO, MSS);
    let rtt = rtt_of(100);
    l.on_ack(at(0), 0, Some(0), &rtt);
    l.on_ack(at(10), 0, Some(20 * MS), &rtt);
    l.on_ack(at(20), 0, Some(90 * MS), &rtt); // spike: the min of {0, 20, 90} is 0
    assert_eq!(l.queuing_delay(), Some(Duration::ZERO));
    // Once the 0 sample is older than one RTT (100 ms), it no longer counts.
    l.on_ack(at(105), 0, Some(30 * MS), &rtt);
    assert_eq!(l.queuing_delay(), Some(Duration::from_millis(20)));
    // And only CURRENT_FILTER samples are kept.
    for i in 0..4 {
        l.on_ack(at(106 + i), 0, Some(60 * MS), &rtt);
    }
    assert_eq!(l.current.len(), 4);
    assert_eq!(l.queuing_delay(), Some(Duration::from_millis(60)));
}

#[test]
fn null_filter_uses_latest() {
    let mut l = vector_ledbat();
    let rtt = rtt_of(100);
    l.on_ack(at(0), 0, Some(0), &rtt);
    l.on_ack(at(1), 0, Some(80 * MS), &rtt);
    assert_eq!(l.queuing_delay(), Some(Duration::from_millis(80)));
    l.on_ack(at(2), 0, Some(10 * MS), &rtt);
    assert_eq!(l.queuing_delay(), Some(Duration::from_millis(10)));
}

#[test]
fn ack_without_sample_reuses_last_estimate() {
    let rtt = rtt_of(100);
    let mut l = vector_ledbat();
    set_window(&mut l, 10_240);
    l.on_sent(at(0), 10_240);
    // Before any sample the queuing delay counts as zero: full growth.
    l.on_ack(at(1), 1_024, None, &rtt);
    assert!((exact_window(&l) - (10_240.0 + 102.4)).abs() < 0.001);
    l.on_ack(at(2), 0, Some(0), &rtt);
    l.on_ack(at(3), 0, Some(200 * MS), &rtt);
    let before = l.cwnd;
    l.on_ack(at(4), 1_024, None, &rtt);
    assert!(l.cwnd < before);
}

#[test]
fn decrease_gain_speeds_up_decrease_only() {
    let rtt = rtt_of(100);
    let run = |gain: u32, delay: i64| {
        let mut cfg = vector_config();
        cfg.decrease_gain_permille(gain);
        let mut l = Ledbat::new(cfg, Instant::ZERO, MSS);
        set_window(&mut l, 20_480);
        l.on_sent(at(0), 20_480);
        l.on_ack(at(1), 0, Some(0), &rtt);
        l.on_ack(at(2), 1_024, Some(delay), &rtt);
        exact_window(&l)
    };
    // off_target −1: −1024·1024/20480 = −51.2, or −204.8 with a decrease gain of 4.
    assert!((run(1_000, 200 * MS) - (20_480.0 - 51.2)).abs() < 0.001);
    assert!((run(4_000, 200 * MS) - (20_480.0 - 204.8)).abs() < 0.001);
    // Increases are unaffected.
    assert_eq!(run(1_000, 0), run(4_000, 0));
}

#[test]
fn smaller_gain_grows_slower() {
    let rtt = rtt_of(100);
    let mut cfg = vector_config();
    cfg.gain_permille(500);
    let mut l = Ledbat::new(cfg, Instant::ZERO, MSS);
    l.on_sent(at(0), 2_048);
    l.on_ack(at(100), 1_024, Some(0), &rtt);
    assert_eq!(exact_window(&l), 2_048.0 + 256.0);
}

// ---- Application-limited clamp ----

#[test]
fn app_limited_sender_cannot_inflate_window() {
    let rtt = rtt_of(100);
    let mut l = vector_ledbat();
    // One datagram in flight at a time, for many RTTs at zero queuing delay.
    for i in 0..1_000 {
        l.on_sent(at(i * 100), 1_024);
        l.on_ack(at(i * 100 + 50), 1_024, Some(0), &rtt);
    }
    // flightsize before each ACK was 1024, so cwnd ≤ 2048 (and ≥ the floor 2048).
    assert_eq!(l.window(), 2_048);
}

/// A window-limited sender whose ACKs arrive together (it cannot send between them)
/// keeps its window; the literal pseudo-code collapses it to the last ACK's flight.
#[test]
fn acks_in_one_batch_do_not_look_application_limited() {
    let rtt = rtt_of(10);
    for (over_rtt, expect_at_least) in [(true, 64 * MSS), (false, 2 * MSS)] {
        let mut cfg = vector_config();
        cfg.flightsize_over_rtt(over_rtt);
        let mut l = Ledbat::new(cfg, Instant::ZERO, MSS);
        l.on_ack(at(0), 0, Some(0), &rtt);
        set_window(&mut l, 64 * MSS);
        l.on_sent(at(1), 64 * MSS);
        for i in 0..64 {
            l.on_ack(at(11) + Duration::from_micros(i), MSS, Some(0), &rtt);
        }
        assert!(
            l.window() >= expect_at_least && l.window() <= 66 * MSS,
            "{over_rtt}: {}",
            l.window()
        );
        if !over_rtt {
            assert_eq!(l.window(), 2 * MSS);
        }
    }
}

/// Below its window for round trips on end, a sender is still clamped to what it uses.
#[test]
fn sender_below_its_window_for_rounds_is_clamped() {
    let rtt = rtt_of(10);
    let mut cfg = vector_config();
    cfg.flightsize_over_rtt(true);
    let mut l = Ledbat::new(cfg, Instant::ZERO, MSS);
    l.on_ack(at(0), 0, Some(0), &rtt);
    set_window(&mut l, 64 * MSS);
    // Four datagrams per 10 ms round trip, for a second.
    for r in 0..100 {
        l.on_sent(at(r * 10), 4 * MSS);
        l.on_ack(at(r * 10 + 9), 4 * MSS, Some(0), &rtt);
    }
    assert!(l.window() <= 5 * MSS, "{}", l.window());
}

// ---- Slow start ----

fn slow_start_ledbat() -> Ledbat {
    let mut cfg = vector_config();
    cfg.slow_start(true);
    Ledbat::new(cfg, Instant::ZERO, MSS)
}

/// An ACK-clocked, window-limited sender over a path with a 100 ms RTT, starting at `t0`
/// with a base delay sample of 0: each round, every chunk sent in the previous round is
/// acknowledged with the delay `delay(round)`, and after each ACK the sender refills the
/// window. Returns the window at the end of each round.
fn run_rounds(l: &mut Ledbat, t0: Instant, rounds: u64, delay: impl Fn(u64) -> i64) -> Vec<u64> {
    let rtt = rtt_of(100);
    l.on_ack(t0, 0, Some(0), &rtt);
    let fill = |l: &mut Ledbat, now: Instant| {
        let mut sent = 0;
        while l.bytes_in_flight() + MSS <= l.window() {
            l.on_sent(now, MSS);
            sent += 1;
        }
        sent
    };
    let mut outstanding = fill(l, t0);
    let mut windows = Vec::new();
    for r in 0..rounds {
        let round_start = t0 + Duration::from_millis(100 * (r + 1));
        let mut sent = 0;
        for i in 0..outstanding {
            let now = round_start + Duration::from_micros(i);
            l.on_ack(now, MSS, Some(delay(r)), &rtt);
            sent += fill(l, now);
        }
        outstanding = sent;
        windows.push(l.window());
    }
    windows
}

#[test]
fn slow_start_doubles_per_rtt_below_threshold() {
    let mut l = slow_start_ledbat();
    assert!(l.in_slow_start());
    let w = run_rounds(&mut l, Instant::ZERO, 8, |_| 0);
    assert_eq!(w, [4, 8, 16, 32, 64, 128, 256, 512].map(|x| x * MSS));
    assert!(l.in_slow_start());
    assert!(l.metrics().slow_start);
}

#[test]
fn slow_start_ends_when_queuing_delay_exceeds_half_target() {
    let mut l = slow_start_ledbat();
    // 50 ms (= TARGET/2) still counts as below the threshold; 51 ms does not.
    let w = run_rounds(&mut l, Instant::ZERO, 6, |r| {
        if r < 3 { 50 * MS } else { 51 * MS }
    });
    assert!(!l.in_slow_start());
    assert_eq!(&w[..3], &[4 * MSS, 8 * MSS, 16 * MSS]);
    // After the exit, growth is LEDBAT's: much less than doubling.
    assert!(w[3] < 24 * MSS && w[5] < 30 * MSS, "{w:?}");
}

#[test]
fn slow_start_ends_on_loss() {
    let mut l = slow_start_ledbat();
    run_rounds(&mut l, Instant::ZERO, 3, |_| 0);
    assert_eq!(l.window(), 16 * MSS);
    l.on_loss(at(1_000), MSS, &rtt_of(100));
    assert!(!l.in_slow_start());
    assert_eq!(l.window(), 8 * MSS);
}

#[test]
fn slow_start_resumes_after_cto_up_to_half_the_window() {
    let mut l = slow_start_ledbat();
    run_rounds(&mut l, Instant::ZERO, 5, |_| 0);
    assert_eq!(l.window(), 64 * MSS);
    // The path goes dark: no ACK for one CTO.
    let d = l.cto_deadline().unwrap();
    l.on_timeout(d);
    assert_eq!(l.window(), MSS);
    assert!(l.in_slow_start());
    // Everything outstanding is then declared lost: the same congestion event, so the
    // window is not reduced again and slow start continues.
    let flight = l.bytes_in_flight();
    l.on_loss(d, flight, &rtt_of(100));
    assert_eq!(l.window(), MSS);
    assert!(l.in_slow_start());
    assert_eq!(l.metrics().loss_reductions, 0);
    let w = run_rounds(&mut l, d, 6, |_| 0);
    // 1 → floor 2 → doubling up to ssthresh = 32 MSS, then LEDBAT's additive increase.
    assert_eq!(&w[..4], &[4 * MSS, 8 * MSS, 16 * MSS, 32 * MSS]);
    assert!(!l.in_slow_start());
    assert!(*w.last().unwrap() < 40 * MSS, "{w:?}");
}

#[test]
fn slow_start_off_means_ledbat_from_the_start() {
    let mut l = vector_ledbat();
    assert!(!l.in_slow_start());
    let w = run_rounds(&mut l, Instant::ZERO, 6, |_| 0);
    // GAIN 1 at zero queuing delay: up to one MSS per RTT (Σ MSS²/cwnd over the ACKs of a
    // round), like Reno's congestion avoidance, never a doubling.
    let mut prev = 2 * MSS;
    for &x in &w {
        assert!(x > prev && x <= prev + MSS, "{w:?}");
        prev = x;
    }
    assert!(prev >= 2 * MSS + 3 * MSS, "{w:?}");
}

#[test]
fn large_windows_still_grow_by_fractions() {
    let rtt = rtt_of(100);
    let mut l = vector_ledbat();
    set_window(&mut l, 1 << 30);
    l.on_sent(at(0), 1 << 30);
    let before = l.cwnd;
    // 1024·1024 / 2^30 = 1/1024 byte per ACK: invisible in whole bytes, kept in the fraction.
    l.on_ack(at(1), MSS, Some(0), &rtt);
    assert_eq!(l.cwnd - before, 64);
}

// ---- Configuration ----

#[test]
fn config_defaults() {
    // The default: RFC 6817 with the delay-gated changes.
    let d = LedbatConfig::default();
    assert_eq!(d.target, Duration::from_millis(25));
    assert!(d.multiplicative_decrease);
    assert_eq!(d.init_cwnd, 10);
    assert_eq!(d.slow_start_exit_permille, 250);
    assert_eq!(d.regrow_below_permille, 100);
    assert_eq!(d.quiet_loss_permille, 900);
    // LEDBAT as specified.
    let c = LedbatConfig::rfc6817();
    assert_eq!((c.regrow_below_permille, c.quiet_loss_permille), (0, 500));
    assert!(!c.multiplicative_decrease);
    assert_eq!(c.target, Duration::from_millis(100));
    assert_eq!((c.gain_permille, c.decrease_gain_permille), (1_000, 1_000));
    assert_eq!(c.allowed_increase, 1);
    assert_eq!((c.base_history, c.current_filter), (10, 4));
    assert_eq!(c.filter, DelayFilter::Min);
    assert_eq!((c.init_cwnd, c.min_cwnd), (2, 2));
    assert_eq!(c.initial_cto, Duration::from_secs(1));
    assert_eq!(c.max_cto, Duration::from_secs(60));
    assert!(c.slow_start);
    assert_eq!(c.slow_start_exit_permille, 500);
    assert_eq!(c.pacing, Some(PacerConfig::new()));
    assert!(c.flightsize_over_rtt);
}

#[test]
fn config_setters_clamp_to_rfc_limits() {
    let mut c = LedbatConfig::rfc6817();
    c.target(Duration::from_millis(250))
        .gain_permille(2_000)
        .decrease_gain_permille(0)
        .allowed_increase(0)
        .base_history(0)
        .current_filter(1_000)
        .init_cwnd(40)
        .min_cwnd(5)
        .initial_cto(Duration::ZERO)
        .max_cto(Duration::from_secs(1))
        .slow_start_exit_permille(5_000);
    assert_eq!(c.target, Duration::from_millis(100));
    assert_eq!(c.gain_permille, 1_000);
    assert_eq!(c.decrease_gain_permille, 1);
    assert_eq!(c.allowed_increase, 1);
    assert_eq!(c.base_history, 1);
    assert_eq!(c.current_filter, 64);
    assert_eq!(c.init_cwnd, 10);
    assert_eq!(c.min_cwnd, 2);
    assert_eq!(c.initial_cto, Duration::from_millis(1));
    assert_eq!(c.max_cto, Duration::from_secs(60));
    assert_eq!(c.slow_start_exit_permille, 1_000);
    c.target(Duration::ZERO);
    assert_eq!(c.target, Duration::from_millis(1));
    c.init_cwnd(1).min_cwnd(2);
    let l = Ledbat::new(c, Instant::ZERO, MSS);
    assert_eq!(
        l.window(),
        2 * MSS,
        "INIT_CWND below MIN_CWND acts as MIN_CWND"
    );
}

#[test]
fn mss_is_clamped() {
    let l = Ledbat::new(vector_config(), Instant::ZERO, 0);
    assert_eq!(l.mss(), 1);
    assert_eq!(l.window(), 2);
    let l = Ledbat::new(vector_config(), Instant::ZERO, u64::MAX);
    assert_eq!(l.mss(), 65_535);
}

#[test]
fn factory_builds_ledbat() {
    let c = LedbatConfig::rfc6817();
    let cc = c.build(Instant::ZERO, 1_200);
    assert_eq!(cc.window(), 2_400);
    let m = cc.metrics();
    assert!(m.slow_start);
    assert_eq!(m.congestion_timeout, Some(Duration::from_secs(1)));
    assert_eq!(m.queuing_delay, None);
    assert_eq!(m.pacing_rate, None); // no RTT yet
}

// ---- Pacing ----

#[test]
fn pacing_spreads_a_full_window_over_about_one_rtt() {
    let mut cfg = vector_config();
    cfg.pacing(Some(PacerConfig::new()));
    let mut l = Ledbat::new(cfg, Instant::ZERO, MSS);
    l.on_ack(at(0), 0, Some(0), &rtt_of(100)); // learn the RTT
    set_window(&mut l, 100 * MSS);
    let mut now = at(0);
    let mut sent = 0;
    while let Some(t) = l.next_send_time(now, MSS) {
        now = now.max(t);
        l.on_sent(now, MSS);
        sent += 1;
    }
    assert_eq!(sent, 100);
    // The first 10 leave at once; the other 90 at 125 chunks per 100 ms.
    assert_eq!(now, at(72));
    assert_eq!(l.metrics().pacing_rate, Some(125 * MSS * 10));
}

// ---- Properties ----

#[derive(Clone, Debug)]
enum Event {
    Send(u64),
    Ack {
        bytes: u64,
        delay: Option<i64>,
        rtt_us: Option<u64>,
    },
    Loss(u64),
    /// Advance to the CTO deadline (if any) and fire it.
    Timeout,
    /// A timeout call at an arbitrary time (usually spurious).
    SpuriousTimeout,
    Wait(u64),
}

fn bytes() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0u64..10_000, 1 => any::<u64>()]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => bytes().prop_map(Event::Send),
        4 => (
            bytes(),
            proptest::option::weighted(0.9, any::<i64>()),
            proptest::option::of(0u64..5_000_000),
        )
            .prop_map(|(bytes, delay, rtt_us)| Event::Ack { bytes, delay, rtt_us }),
        1 => bytes().prop_map(Event::Loss),
        1 => Just(Event::Timeout),
        1 => Just(Event::SpuriousTimeout),
        2 => prop_oneof![0u64..1_000_000, any::<u64>()].prop_map(Event::Wait),
    ]
}

fn config() -> impl Strategy<Value = (LedbatConfig, u64)> {
    (
        any::<bool>(),
        prop_oneof![Just(DelayFilter::Min), Just(DelayFilter::Null)],
        1u64..=2,
        1u32..=1_000,
        1u32..=10_000,
        1u64..=9_000,
    )
        .prop_map(|(slow_start, filter, min_cwnd, gain, decrease, mss)| {
            let mut c = LedbatConfig::rfc6817();
            c.slow_start(slow_start)
                .filter(filter)
                .min_cwnd(min_cwnd)
                .gain_permille(gain)
                .decrease_gain_permille(decrease);
            (c, mss)
        })
}

proptest! {
    /// Whatever happens, cwnd ≥ MIN_CWND·MSS, except right after a CTO, when it is exactly
    /// 1 MSS until the next ACK; nothing overflows or panics.
    #[test]
    fn window_bounds_hold_for_any_event_sequence(
        (cfg, mss) in config(),
        events in proptest::collection::vec(event(), 1..200),
    ) {
        let mut l = Ledbat::new(cfg, Instant::ZERO, mss);
        let mut rtt = RttEstimator::default();
        let mut now = Instant::ZERO;
        let mut after_cto = false;
        let floor = cfg.min_cwnd * mss;
        for ev in events {
            match ev {
                Event::Send(b) => {
                    let _ = l.next_send_time(now, b);
                    l.on_sent(now, b);
                }
                Event::Ack { bytes, delay, rtt_us } => {
                    if let Some(us) = rtt_us {
                        rtt.update(Duration::from_micros(us));
                    }
                    l.on_ack(now, bytes, delay, &rtt);
                    after_cto = false;
                }
                Event::Loss(b) => l.on_loss(now, b, &rtt),
                Event::Timeout => {
                    if let Some(d) = l.cto_deadline() {
                        now = now.max(d);
                        let before = l.metrics().timeouts;
                        l.on_timeout(now);
                        prop_assert_eq!(l.metrics().timeouts, before + 1);
                        after_cto = true;
                    }
                }
                Event::SpuriousTimeout => {
                    let before = l.metrics().timeouts;
                    l.on_timeout(now);
                    if l.metrics().timeouts > before {
                        after_cto = true;
                    }
                }
                Event::Wait(us) => now += Duration::from_micros(us),
            }
            let w = l.window();
            if after_cto {
                prop_assert_eq!(w, l.mss());
            } else {
                prop_assert!(w >= floor, "window {} below floor {}", w, floor);
            }
            prop_assert!(l.cwnd <= MAX_CWND);
            let cto = l.congestion_timeout();
            prop_assert!(cto > Duration::ZERO && cto <= Duration::from_secs(60));
            let m = l.metrics();
            prop_assert_eq!(m.window, w);
            prop_assert_eq!(m.bytes_in_flight, l.bytes_in_flight());
        }
    }

    /// With the queuing delay persistently above TARGET, a fully used window shrinks (to
    /// the floor at most).
    #[test]
    fn persistent_queuing_above_target_shrinks(
        start_mss in 4u64..300,
        extra_us in 1_000i64..1_000_000,
        base in any::<i32>(),
        null_filter: bool,
        over_rtt: bool,
    ) {
        let mut cfg = vector_config();
        if !null_filter {
            cfg.filter(DelayFilter::Min);
        }
        cfg.flightsize_over_rtt(over_rtt);
        let mut l = Ledbat::new(cfg, Instant::ZERO, MSS);
        set_window(&mut l, start_mss * MSS);
        let rtt = rtt_of(100);
        let base = i64::from(base);
        let high = base + 100 * MS + extra_us;
        l.on_sent(at(0), l.window());
        l.on_ack(at(1), 0, Some(base), &rtt);
        // Flush the base sample out of the MIN filter (zero-byte ACKs move nothing).
        for _ in 0..4 {
            l.on_ack(at(1), 0, Some(high), &rtt);
        }
        let start = l.cwnd;
        let mut prev = l.cwnd;
        for i in 0..20 {
            l.on_sent(at(2 + i), l.window().saturating_sub(l.bytes_in_flight()));
            l.on_ack(at(2 + i), MSS, Some(high), &rtt);
            prop_assert!(l.cwnd <= prev);
            prev = l.cwnd;
        }
        prop_assert!(l.cwnd < start);
    }

    /// With the queuing delay persistently below TARGET, a fully used window grows on
    /// every ACK.
    #[test]
    fn persistent_queuing_below_target_grows(
        start_mss in 2u64..300,
        queuing_us in 0i64..100_000,
        base in any::<i32>(),
        null_filter: bool,
    ) {
        let mut cfg = vector_config();
        if !null_filter {
            cfg.filter(DelayFilter::Min);
        }
        let mut l = Ledbat::new(cfg, Instant::ZERO, MSS);
        set_window(&mut l, start_mss * MSS);
        let rtt = rtt_of(100);
        let base = i64::from(base);
        l.on_sent(at(0), l.window());
        l.on_ack(at(1), 0, Some(base), &rtt);
        for i in 0..20 {
            l.on_sent(at(2 + i), l.window().saturating_sub(l.bytes_in_flight()));
            let before = l.cwnd;
            l.on_ack(at(2 + i), MSS, Some(base + queuing_us), &rtt);
            prop_assert!(l.cwnd > before, "{} -> {}", before, l.cwnd);
        }
    }
}

#[test]
fn a_loss_with_no_queue_takes_a_tenth_and_one_with_a_queue_halves() {
    let rtt = rtt_of(100);
    for (queue_ms, expect_permille) in [(2u64, 900u64), (60, 500)] {
        let mut l = Ledbat::new(LedbatConfig::new(), Instant::ZERO, MSS);
        let mut now = Instant::ZERO;
        // A base delay of 10 ms, then samples with `queue_ms` on top.
        for i in 0..40u64 {
            l.on_sent(now, MSS);
            now += Duration::from_millis(10);
            let delay = if i < 4 {
                10_000
            } else {
                10_000 + queue_ms as i64 * 1_000
            };
            l.on_ack(now, MSS, Some(delay), &rtt);
        }
        let before = l.window();
        now += Duration::from_secs(1);
        l.on_loss(now, MSS, &rtt);
        assert_eq!(
            l.window(),
            (before * expect_permille / 1_000).max(2 * MSS),
            "queue {queue_ms} ms"
        );
    }
}

#[test]
fn rfc6817_halves_on_every_loss_and_never_regrows_in_slow_start() {
    let rtt = rtt_of(100);
    let mut l = Ledbat::new(LedbatConfig::rfc6817(), Instant::ZERO, MSS);
    let mut now = Instant::ZERO;
    for _ in 0..20 {
        l.on_sent(now, MSS);
        now += Duration::from_millis(10);
        l.on_ack(now, MSS, Some(10_000), &rtt);
    }
    let before = l.window();
    now += Duration::from_secs(1);
    l.on_loss(now, MSS, &rtt);
    assert_eq!(l.window(), (before / 2).max(2 * MSS));
    for _ in 0..20 {
        l.on_sent(now, MSS);
        now += Duration::from_millis(10);
        l.on_ack(now, MSS, Some(10_000), &rtt);
    }
    assert!(
        !l.in_slow_start(),
        "no queue, but RFC 6817 stays out of slow start"
    );
    // The default grows as slow start again once the delay shows no queue.
    let mut d = Ledbat::new(LedbatConfig::new(), Instant::ZERO, MSS);
    let mut now = Instant::ZERO;
    for _ in 0..20 {
        d.on_sent(now, MSS);
        now += Duration::from_millis(10);
        d.on_ack(now, MSS, Some(10_000), &rtt);
    }
    now += Duration::from_secs(1);
    d.on_loss(now, MSS, &rtt);
    for _ in 0..4 {
        d.on_sent(now, MSS);
        now += Duration::from_millis(10);
        d.on_ack(now, MSS, Some(10_000), &rtt);
    }
    assert!(d.in_slow_start());
}

#[test]
fn a_queue_above_target_shrinks_the_default_window_in_proportion() {
    // 120 ms of queue against a 25 ms TARGET: a round trip of ACKs takes the default window
    // down by half (the cap); RFC 6817's additive decrease takes it down by about one MSS.
    let rtt = rtt_of(100);
    let shrink = |cfg: LedbatConfig| {
        let mut l = Ledbat::new(cfg, Instant::ZERO, MSS);
        set_window(&mut l, 200 * MSS);
        l.slow_start = false;
        let mut now = Instant::ZERO;
        l.on_sent(now, 200 * MSS);
        // Base delay 10 ms, then 120 ms of queue on every sample.
        l.on_ack(now, MSS, Some(10_000), &rtt);
        for _ in 0..4 {
            l.on_ack(now, MSS, Some(130_000), &rtt);
        }
        let before = l.window();
        // One window's worth of ACKs: a round trip.
        for _ in 0..200 {
            now += Duration::from_micros(500);
            l.on_ack(now, MSS, Some(130_000), &rtt);
        }
        (before, l.window())
    };
    let (before, after) = shrink(LedbatConfig::new());
    assert!(after <= before * 6 / 10, "default: {before} -> {after}");
    let (before, after) = shrink(LedbatConfig::rfc6817());
    assert!(after + 2 * MSS >= before, "RFC 6817: {before} -> {after}");
}

/// A sender the pacer holds back (one datagram out per ACK, so its flight never exceeds
/// what it started the round with) doubles its window per round trip in slow start when
/// the engine says data was waiting at each ACK (RFC 7661: it is not application-limited);
/// without that word, the application-limited clamp keeps the window near the flight.
#[test]
fn window_limited_slow_start_doubles_though_paced() {
    let rtt = rtt_of(100);
    for waiting in [true, false] {
        let mut cfg = LedbatConfig::new();
        cfg.pacing(None);
        let mut l = Ledbat::new(cfg, Instant::ZERO, MSS);
        l.on_ack(at(0), 0, Some(0), &rtt);
        set_window(&mut l, 32 * MSS);
        l.on_sent(at(0), 32 * MSS);
        for i in 0..32 {
            if waiting {
                l.on_data_waiting(at(100));
            }
            l.on_ack(at(100) + Duration::from_micros(i), MSS, Some(0), &rtt);
            l.on_sent(at(100) + Duration::from_micros(i), MSS);
        }
        assert!(l.in_slow_start());
        if waiting {
            assert_eq!(l.window(), 64 * MSS);
        } else {
            assert!(l.window() <= 35 * MSS, "{}", l.window());
        }
    }
}

/// After a queue ended the first slow start, a path that empties again regrows at ×1.5
/// per round trip, not ×2: the queue that ends it shows a round trip late.
#[test]
fn regrowth_goes_one_and_a_half_times_per_round_trip() {
    let mut cfg = LedbatConfig::new();
    cfg.pacing(None);
    let mut l = Ledbat::new(cfg, Instant::ZERO, MSS);
    // Rounds 0-2 without a queue (doubling), round 3 with 20 ms of queue (beyond TARGET/4:
    // slow start ends), then none again (below TARGET/10: regrowth).
    let w = run_rounds(
        &mut l,
        Instant::ZERO,
        8,
        |r| if r == 3 { 20 * MS } else { 0 },
    );
    assert_eq!(w[1], 2 * w[0], "{w:?}");
    assert!(l.in_slow_start() && l.regrowing);
    for pair in w[5..].windows(2) {
        let ratio = pair[1] as f64 / pair[0] as f64;
        assert!((1.4..1.6).contains(&ratio), "{w:?}");
    }
}

/// The delay an ACK carries is the queue the window of a round trip before built: a decrease
/// stops at the window that leaves TARGET of queue (`cwnd · (min_rtt + TARGET) / (min_rtt +
/// queue)`) until a round trip has passed, and the halving of a loss is the round trip's
/// whole decrease. A queue that stays above TARGET round trip after round trip is not ours:
/// from the third, each round trip halves. Without the floor, ACKs of the window before the decrease kept shrinking it
/// on a queue that was already draining: the simulated reordering link cycled between an
/// empty queue and 48 ms, and a loss took a 1.7 MB window to 14 KB within one round trip.
#[test]
fn a_decrease_stops_for_a_round_trip_at_the_window_that_leaves_target() {
    let rtt = rtt_of(100);
    let queued_by = |l: &mut Ledbat, now: Instant, acks: u64, acked: u64| {
        for i in 0..acks {
            let t = now + Duration::from_micros(i * 400);
            l.on_ack(t, acked, Some(150_000), &rtt);
        }
    };
    let queued = |l: &mut Ledbat, now: Instant, acks: u64| queued_by(l, now, acks, MSS);
    let start = |l: &mut Ledbat| {
        set_window(l, 400 * MSS);
        l.slow_start = false;
        l.on_sent(at(0), 400 * MSS);
        // Base delay 100 ms, then 50 ms of queue.
        l.on_ack(at(0), MSS, Some(100_000), &rtt);
    };
    let mut l = Ledbat::new(LedbatConfig::new(), Instant::ZERO, MSS);
    start(&mut l);
    let before = l.window();
    queued(&mut l, at(1), 200);
    // (100 + 25) / (100 + 50) of the window: the queue above TARGET is gone, no more.
    let floor = before * 125 / 150;
    assert!(
        l.window().abs_diff(floor) <= 2 * MSS,
        "{before} -> {} (floor {floor})",
        l.window()
    );
    // A round trip later the queue still shows: the next decrease starts, to the same share.
    queued(&mut l, at(120), 200);
    let second = l.window();
    assert!(
        second.abs_diff(floor * 125 / 150) <= 2 * MSS,
        "{floor} -> {second}"
    );
    // A third round trip in a row of that queue is someone else's (a TCP flow): halve.
    queued_by(&mut l, at(240), 200, 2 * MSS);
    assert!(
        l.window().abs_diff(second / 2) <= 2 * MSS,
        "{second} -> {}",
        l.window()
    );

    // A loss halves; the queue its round trip's ACKs still carry takes nothing more.
    let mut l = Ledbat::new(LedbatConfig::new(), Instant::ZERO, MSS);
    start(&mut l);
    // The queue shows (a loss with none takes a tenth).
    l.queuing_delay = Some(50_000);
    let before = l.window();
    l.on_loss(at(1), MSS, &rtt);
    assert_eq!(l.window(), before / 2);
    queued(&mut l, at(2), 200);
    assert_eq!(l.window(), before / 2);

    // RFC 6817's controller is as specified: no floor.
    let mut l = Ledbat::new(LedbatConfig::rfc6817(), Instant::ZERO, MSS);
    start(&mut l);
    l.queuing_delay = Some(50_000);
    l.on_loss(at(1), MSS, &rtt);
    let halved = l.window();
    // 150 ms of queue: above its TARGET of 100 ms.
    for i in 0..200 {
        l.on_ack(
            at(2) + Duration::from_micros(i * 400),
            MSS,
            Some(250_000),
            &rtt,
        );
    }
    assert!(l.window() < halved, "{halved} -> {}", l.window());
}
