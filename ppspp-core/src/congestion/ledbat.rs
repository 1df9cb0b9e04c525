//! LEDBAT, Low Extra Delay Background Transport (RFC 6817), the congestion controller PPSPP
//! mandates (RFC 7574 §8).
//!
//! LEDBAT keeps the queuing delay it adds at the bottleneck near a TARGET. Every ACK carries a
//! one-way delay sample (receiver clock minus the DATA timestamp); the sender
//! keeps the minimum delay per minute over the last BASE_HISTORY minutes (the *base delay*,
//! the path without queues) and a short list of recent samples (the *current delay*). Their
//! difference is the queuing delay, and the window moves in proportion to how far that is off
//! target:
//!
//! ```text
//! queuing_delay = FILTER(current_delays) − MIN(base_delays)
//! off_target    = (TARGET − queuing_delay) / TARGET
//! cwnd         += GAIN · off_target · bytes_newly_acked · MSS / cwnd
//! cwnd          = min(cwnd, flightsize + ALLOWED_INCREASE · MSS)     (application-limited)
//! cwnd          = max(cwnd, MIN_CWND · MSS)
//! ```
//!
//! # Mapping onto RFC 6817
//!
//! | Requirement | Where |
//! |---|---|
//! | L-2.5-a TARGET ≤ 100 ms | [`LedbatConfig::target`] clamps; default 100 ms (libswift used 25 ms) |
//! | L-2.5-b ALLOWED_INCREASE > 0, should be 1 | [`LedbatConfig::allowed_increase`] |
//! | L-2.5-c GAIN ≤ 1; a larger decrease GAIN is allowed | [`LedbatConfig::gain_permille`], [`LedbatConfig::decrease_gain_permille`] |
//! | L-2.5-d BASE_HISTORY = 10 | [`LedbatConfig::base_history`] |
//! | L-2.5-e CURRENT_FILTER, no sample older than one RTT | [`LedbatConfig::current_filter`], [`DelayFilter::Min`] drops older samples |
//! | L-2.5-f INIT_CWND = MIN_CWND = 2 (SHOULD), not above TCP's | [`LedbatConfig::init_cwnd`] (2 in [`LedbatConfig::rfc6817`], 10 = TCP's by default), [`LedbatConfig::min_cwnd`] |
//! | L-2.4-a CTO starts at 1 s, follows RTT samples (RFC 6298) | [`LedbatConfig::initial_cto`]; on every ACK the CTO becomes [`RttEstimator::rto`] |
//! | L-2.4-b a CTO cap must be ≥ 60 s | [`LedbatConfig::max_cto`] clamps |
//! | L-2.4-c initial state | [`Ledbat::new`] |
//! | L-2.4-d update_base_delay / update_current_delay | `update_base_delay`, `update_current_delay` |
//! | L-2.4-e, L-2.4-f window update and clamps | [`Controller::on_ack`] |
//! | L-2.4-h loss: halve, at most once per RTT, floor MIN_CWND | [`Controller::on_loss`] |
//! | L-2.4-i CTO: cwnd = 1 MSS, CTO doubles | [`Controller::on_timeout`], [`Controller::cto_deadline`] |
//! | L-2.4-j FILTER: NULL or MIN over a short window | [`DelayFilter`] |
//! | L-2.4-k idle minutes leave +∞; base list kept while idle | `update_base_delay` |
//! | L-2.2-c slow start is allowed | [`LedbatConfig::slow_start`] |
//!
//! # Choices beyond the RFC text
//!
//! - **Minutes of the injected clock.** The base-delay history rolls over when the minute of
//!   `now` (µs since the driver's epoch / 60 s) changes, never by reading a wall clock. Every
//!   whole minute without a sample stores +∞, as §2.4.2's prose asks, so after BASE_HISTORY
//!   idle minutes the next sample starts the measurement afresh.
//! - **Signed delays.** Samples are `i64` µs and may be negative (the receiver's clock may be
//!   behind); only differences against the base minimum are used (App. A.1).
//! - **Slow start** (measured: libswift leaves slow start too early and then crawls at one
//!   chunk per RTT). When enabled (the default), the window grows by the bytes acknowledged,
//!   doubling per RTT, while the queuing delay stays at or below
//!   [`LedbatConfig::slow_start_exit_permille`] of TARGET (default TARGET/2) and no loss has
//!   occurred. It ends on the first loss, on a CTO, or when the queuing delay exceeds that
//!   threshold; from then on the RFC 6817 rule applies. In slow start the
//!   application-limited clamp is `flightsize + max(ALLOWED_INCREASE·MSS, bytes_newly_acked)`,
//!   so that an ACK covering several chunks can still double a fully used window. After a
//!   CTO, slow start resumes up to half the window the CTO found (RFC 5681's ssthresh), so a
//!   single outage does not leave the flow crawling up from 2 MSS.
//! - **Flightsize over the last round trip.** The application-limited clamp (L-2.4-f) uses
//!   the largest flightsize of the last round trip or two, not only the flightsize just
//!   before this ACK: RFC 6817 §2.5 describes ALLOWED_INCREASE as limiting "the cwnd increase
//!   based on flightsize in the previous RTT", and the literal pseudo-code misreads a
//!   window-limited sender as application-limited whenever ACKs arrive faster than it can
//!   send: ACKs processed one after another (several per datagram, or a batch of datagrams
//!   received at once) each see the flight the previous ones left, and a PPSPP sender's
//!   upload queue runs dry for a moment whenever the peer's next REQUESTs are still on their
//!   way. Measured on loopback, the literal rule cut a 4 MB window to under 100 KB a dozen
//!   times per 128 MiB transfer. A sender that stays below its window for a whole round trip
//!   is still clamped to a little more than what it used (L-2.4-l), and the delay-based
//!   decrease and loss reaction are untouched. A sender whose data waited for the window or
//!   the pacer when an ACK came ([`Controller::on_data_waiting`]) is not application-limited
//!   at all (RFC 7661) and is not clamped: paced slow start lets out less than the window
//!   while ACKs arrive, and the clamp held it to ×1.4 per round trip instead of ×2. [`LedbatConfig::flightsize_over_rtt`]`(false)`
//!   restores the literal rule.
//! - **Fixed-point arithmetic.** The window is kept in 1/65536 bytes so that increments
//!   smaller than a byte (large windows) still accumulate; all arithmetic is integer.
//! - **Pacing.** [`Controller::next_send_time`] spaces datagrams at 125 % of cwnd per SRTT
//!   (200 % in slow start) with bursts of up to 10 datagrams or 2 ms at that rate; see
//!   [`super::pacer`].
//!
//! # The default and RFC 6817
//!
//! [`LedbatConfig::rfc6817`] is LEDBAT as specified. The default ([`LedbatConfig::new`])
//! keeps its TARGET, its delay-based decrease and its halving on loss with a queue, and fills
//! long and lossy paths the specified controller cannot (the simulator's wide-area presets,
//! `ppspp-sim wan`, measure both):
//! - TARGET is 25 ms (libswift's), not 100 ms, and a queuing delay above it shrinks the
//!   window in proportion (by the share it exceeds TARGET per round trip, at most half), not
//!   by one MSS per round trip: LEDBAT must step aside for TCP, and a large window shrinking
//!   by one MSS per round trip does not;
//! - INIT_CWND is 10, TCP's initial window (RFC 6928), not 2;
//! - slow start ends at TARGET/4 of queuing delay rather than TARGET/2 (doubling per round
//!   trip, TARGET/2 overflows a drop-tail queue of about one round trip before it shows);
//! - with the queuing delay below TARGET/10 the window grows as in slow start again, at ×1.5
//!   per round trip (the queue that ends it shows a round trip late; doubling overflowed a
//!   drop-tail queue and cost reordered paths a tenth of their rate): LEDBAT's own increase
//!   is at most one MSS per round trip, minutes to refill a 100 Mbit/s, 100 ms path after
//!   one loss;
//! - a loss with no queue (below TARGET/10) takes the window to ×0.9, not ×0.5: a random loss
//!   is not a queue, and halving on each one caps a 1 %-loss path at the Reno rate;
//! - a decrease (on the delay or on a loss) is one per round trip: one on the delay stops at
//!   the window that leaves TARGET of queue, `cwnd·(min_rtt + TARGET)/(min_rtt + queue)` (at
//!   least half), until a round trip has passed, and a loss's reduction is its round trip's
//!   whole decrease. The ACKs of that round trip carry the queue the window before it built;
//!   shrinking on them again undershot, and the queue cycled between empty and twice TARGET.
//!   A queue still above TARGET a round trip after a decrease is someone else's (a TCP flow):
//!   each further round trip of it halves the window.
//!
//! # Example
//!
//! ```
//! use ppspp_core::congestion::{Controller, Ledbat, LedbatConfig};
//! use ppspp_core::rtt::RttEstimator;
//! use ppspp_core::time::{Duration, Instant};
//!
//! let mut rtt = RttEstimator::default();
//! let mut cc = Ledbat::new(LedbatConfig::new(), Instant::ZERO, 1_024);
//! assert_eq!(cc.window(), 10 * 1_024);
//! // LEDBAT exactly as RFC 6817 specifies it starts at two MSS.
//! assert_eq!(Ledbat::new(LedbatConfig::rfc6817(), Instant::ZERO, 1_024).window(), 2 * 1_024);
//! cc.on_sent(Instant::ZERO, 1_024);
//! let now = Instant::from_millis(40);
//! rtt.update(Duration::from_millis(40));
//! cc.on_ack(now, 1_024, Some(12_345), &rtt);
//! assert!(cc.window() >= 2 * 1_024);
//! ```

use alloc::boxed::Box;
use alloc::collections::VecDeque;

use super::pacer::{Pacer, PacerConfig, Rate};
use super::{Controller, ControllerFactory, ControllerMetrics};
use crate::rtt::RttEstimator;
use crate::time::{Duration, Instant, duration_micros};

/// The FILTER() applied to the recent delay samples (RFC 6817 §2.4.2).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DelayFilter {
    /// The minimum of the last [`LedbatConfig::current_filter`] samples that are at most one
    /// smoothed RTT old (the newest always counts). Robust against isolated delay spikes.
    #[default]
    Min,
    /// The latest sample, unfiltered.
    Null,
}

/// The parameters of [`Ledbat`]; also its [`ControllerFactory`].
///
/// Setters clamp values the RFC forbids to the nearest allowed value, so a `LedbatConfig` is
/// always within RFC 6817 §2.5.
///
/// ```
/// use ppspp_core::congestion::{DelayFilter, LedbatConfig};
/// use ppspp_core::time::Duration;
///
/// let mut cfg = LedbatConfig::new();
/// cfg.target(Duration::from_millis(25)) // what libswift uses
///     .filter(DelayFilter::Null)
///     .slow_start(false);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LedbatConfig {
    target: Duration,
    gain_permille: u32,
    decrease_gain_permille: u32,
    allowed_increase: u64,
    base_history: usize,
    current_filter: usize,
    filter: DelayFilter,
    init_cwnd: u64,
    min_cwnd: u64,
    initial_cto: Duration,
    max_cto: Duration,
    slow_start: bool,
    slow_start_exit_permille: u32,
    pacing: Option<PacerConfig>,
    flightsize_over_rtt: bool,
    regrow_below_permille: u32,
    quiet_loss_permille: u32,
    multiplicative_decrease: bool,
}

impl LedbatConfig {
    /// The defaults: TARGET 25 ms, GAIN 1 (both ways), ALLOWED_INCREASE 1, BASE_HISTORY 10,
    /// a MIN filter over 4 samples, INIT_CWND 10 (TCP's initial window, RFC 6928; RFC 6817
    /// says SHOULD be 2), MIN_CWND 2, CTO 1 s capped at 60 s, slow start until TARGET/4 of
    /// queuing delay, slow-start growth again below TARGET/10, a loss with no queue taking
    /// the window to ×0.9 (with a queue: ×0.5), pacing on. [`LedbatConfig::rfc6817`] is
    /// LEDBAT exactly as specified, for comparison.
    pub const fn new() -> Self {
        Self {
            target: Duration::from_millis(25),
            gain_permille: 1_000,
            decrease_gain_permille: 1_000,
            allowed_increase: 1,
            base_history: 10,
            current_filter: 4,
            filter: DelayFilter::Min,
            init_cwnd: 10,
            min_cwnd: 2,
            initial_cto: Duration::from_secs(1),
            max_cto: Duration::from_secs(60),
            slow_start: true,
            slow_start_exit_permille: 250,
            pacing: Some(PacerConfig::new()),
            flightsize_over_rtt: true,
            regrow_below_permille: 100,
            quiet_loss_permille: 900,
            multiplicative_decrease: true,
        }
    }

    /// LEDBAT exactly as RFC 6817 describes it: slow start only until the first loss or
    /// TARGET/2 of queuing delay, then GAIN · off_target per round trip (at most one MSS), and
    /// every loss halves the window. The default ([`LedbatConfig::new`]) differs in two
    /// delay-gated ways, for paths with a large bandwidth-delay product or random loss: see
    /// [`LedbatConfig::regrow_below_permille`] and [`LedbatConfig::quiet_loss_permille`].
    pub const fn rfc6817() -> Self {
        let mut c = Self::new();
        c.target = Duration::from_millis(100);
        c.init_cwnd = 2;
        c.slow_start_exit_permille = 500;
        c.regrow_below_permille = 0;
        c.quiet_loss_permille = 500;
        c.multiplicative_decrease = false;
        c
    }

    /// TARGET, the queuing delay LEDBAT aims to add. Clamped to 1–100 ms: RFC 6817 §2.5 says
    /// it MUST be 100 ms or less. Default 25 ms (as libswift): a TCP CUBIC flow joining a
    /// transfer on a 100 Mbit/s, 100 ms path with a 120 ms drop-tail queue kept 21% of its rate
    /// alone with 100 ms, 75% with 60 ms (LEDBAT++'s), 81% with 40 ms and 97% in most runs with
    /// 25 ms (benches/wan.sh), while the transfer alone still filled the path; the queue it adds
    /// alone is 15–20 ms instead of 44–53 ms. [`LedbatConfig::rfc6817`] uses 100 ms.
    pub fn target(&mut self, target: Duration) -> &mut Self {
        self.target = target.clamp(MIN_TARGET, MAX_TARGET);
        self
    }

    /// GAIN for increases, in thousandths (1000 = 1.0, the default). Clamped to 1..=1000: GAIN
    /// MUST be at most 1 (L-2.5-c).
    pub fn gain_permille(&mut self, gain: u32) -> &mut Self {
        self.gain_permille = gain.clamp(1, 1_000);
        self
    }

    /// GAIN for decreases, in thousandths (default 1000). RFC 6817 §2.5 allows a decrease GAIN
    /// above 1 (L-2.5-c) so that LEDBAT backs off faster than a competing flow ramps up.
    /// Clamped to 1..=10 000.
    pub fn decrease_gain_permille(&mut self, gain: u32) -> &mut Self {
        self.decrease_gain_permille = gain.clamp(1, 10_000);
        self
    }

    /// ALLOWED_INCREASE in MSS (default 1). It MUST be greater than 0 (L-2.5-b); clamped to
    /// 1..=64.
    pub fn allowed_increase(&mut self, mss: u64) -> &mut Self {
        self.allowed_increase = mss.clamp(1, 64);
        self
    }

    /// BASE_HISTORY, how many one-minute delay minima are kept (default 10, L-2.5-d).
    /// Clamped to 1..=64.
    pub fn base_history(&mut self, minutes: usize) -> &mut Self {
        self.base_history = minutes.clamp(1, 64);
        self
    }

    /// CURRENT_FILTER, how many recent delay samples are kept (default 4, L-2.5-e). Clamped
    /// to 1..=64. Whatever the count, [`DelayFilter::Min`] ignores samples older than one RTT.
    pub fn current_filter(&mut self, samples: usize) -> &mut Self {
        self.current_filter = samples.clamp(1, 64);
        self
    }

    /// FILTER() (default [`DelayFilter::Min`]).
    pub fn filter(&mut self, filter: DelayFilter) -> &mut Self {
        self.filter = filter;
        self
    }

    /// INIT_CWND in MSS (default 10; 2 in [`LedbatConfig::rfc6817`]). Clamped to 1..=10: it
    /// MUST NOT exceed TCP's initial window (RFC 6817 §2.5), which is 10 segments (RFC 6928).
    /// A value below MIN_CWND acts as MIN_CWND.
    pub fn init_cwnd(&mut self, mss: u64) -> &mut Self {
        self.init_cwnd = mss.clamp(1, 10);
        self
    }

    /// MIN_CWND in MSS (default 2). Clamped to 1..=2: it MUST NOT exceed TCP's minimum
    /// (RFC 5681 never lowers ssthresh below 2 segments; L-2.5-f).
    pub fn min_cwnd(&mut self, mss: u64) -> &mut Self {
        self.min_cwnd = mss.clamp(1, 2);
        self
    }

    /// The CTO before any ACK (default 1 s, L-2.4-a). At least 1 ms.
    pub fn initial_cto(&mut self, cto: Duration) -> &mut Self {
        self.initial_cto = cto.max(Duration::from_millis(1));
        self
    }

    /// The cap on the backed-off CTO (default 60 s). A cap MUST be at least 60 s (L-2.4-b), so
    /// smaller values are raised to 60 s.
    pub fn max_cto(&mut self, cto: Duration) -> &mut Self {
        self.max_cto = cto.max(MIN_MAX_CTO);
        self
    }

    /// Whether to start in slow start (default `true`; RFC 6817 §2.2 permits it, L-2.2-c).
    pub fn slow_start(&mut self, enabled: bool) -> &mut Self {
        self.slow_start = enabled;
        self
    }

    /// The queuing delay that ends slow start, in thousandths of TARGET (default 250, i.e.
    /// TARGET/4: slow start doubles the window per round trip, so by the time a queue of
    /// TARGET/2 shows, another round trip's worth is on its way and a drop-tail queue of
    /// about a round trip overflows; RFC 6817's own suggestion is TARGET/2, as in
    /// [`LedbatConfig::rfc6817`]). Clamped to 0..=1000.
    pub fn slow_start_exit_permille(&mut self, permille: u32) -> &mut Self {
        self.slow_start_exit_permille = permille.min(1_000);
        self
    }

    /// Below this queuing delay, in thousandths of TARGET (default 100: TARGET/10), the window
    /// grows as in slow start again, whatever happened before (0: never, as RFC 6817).
    /// LEDBAT's own increase is at most one MSS per round trip (GAIN ≤ 1): after a loss on a
    /// 100 Mbit/s, 100 ms path it would take minutes to refill the pipe. While the delay shows
    /// no queue, nobody is competing for the bottleneck, and growing as TCP's slow start does
    /// is no more aggressive than TCP; the queue that ends slow start ends it again.
    pub fn regrow_below_permille(&mut self, permille: u32) -> &mut Self {
        self.regrow_below_permille = permille.min(self.slow_start_exit_permille);
        self
    }

    /// The window after a loss while the queuing delay is below
    /// [`LedbatConfig::regrow_below_permille`] of TARGET, in thousandths (default 900: ×0.9;
    /// 500 halves it, as RFC 6817 does for every loss). A loss with no queue is weak evidence
    /// of congestion (a random loss on a wireless or long path); a loss with a queue still
    /// halves the window.
    pub fn quiet_loss_permille(&mut self, permille: u32) -> &mut Self {
        self.quiet_loss_permille = permille.clamp(500, 1_000);
        self
    }

    /// Whether a queuing delay above TARGET shrinks the window in proportion to it (default
    /// `true`: by the share the delay exceeds TARGET per round trip, at most half, as
    /// LEDBAT++ does) rather than by at most GAIN · MSS per round trip (RFC 6817). With a
    /// window of thousands of datagrams, the additive decrease leaves a competing TCP flow a
    /// fifth of its rate for tens of seconds.
    pub fn multiplicative_decrease(&mut self, enabled: bool) -> &mut Self {
        self.multiplicative_decrease = enabled;
        self
    }

    /// Pacing (default `Some(PacerConfig::new())`); `None` sends as fast as the window allows.
    pub fn pacing(&mut self, pacing: Option<PacerConfig>) -> &mut Self {
        self.pacing = pacing;
        self
    }

    /// Whether the application-limited clamp `cwnd ≤ flightsize + ALLOWED_INCREASE·MSS` takes
    /// the largest flightsize of the last round trip (default `true`), or only the flightsize
    /// just before each ACK (`false`: RFC 6817's pseudo-code to the letter). See the module
    /// docs.
    pub fn flightsize_over_rtt(&mut self, enabled: bool) -> &mut Self {
        self.flightsize_over_rtt = enabled;
        self
    }
}

impl Default for LedbatConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl ControllerFactory for LedbatConfig {
    fn build(&self, now: Instant, mss: u64) -> Box<dyn Controller> {
        Box::new(Ledbat::new(*self, now, mss))
    }
}

/// A LEDBAT congestion controller for one channel (see the module docs).
#[derive(Clone, Debug)]
pub struct Ledbat {
    config: LedbatConfig,
    mss: u64,
    /// cwnd in 1/65536 bytes, within [MSS, MAX_CWND] (1 MSS only after a CTO).
    cwnd: u64,
    /// flightsize: bytes sent and neither acknowledged nor declared lost.
    flight: u64,
    /// current_delays: (arrival, sample µs), oldest first, at most `current_filter` long.
    current: VecDeque<(Instant, i64)>,
    /// base_delays: one minimum per minute, oldest first, exactly `base_history` long;
    /// `None` is +∞.
    base: VecDeque<Option<i64>>,
    /// The minute of `now` at the last rollover; `None` is −∞.
    last_rollover_minute: Option<u64>,
    /// The latest queuing delay in µs, once there has been a sample.
    queuing_delay: Option<u64>,
    cto: Duration,
    /// When the CTO clock started: the last ACK, or the send into an empty pipe.
    cto_started: Option<Instant>,
    last_loss_reduction: Option<Instant>,
    slow_start: bool,
    /// Slow start ends when cwnd reaches this (in 1/65536 bytes); `None` is +∞.
    ssthresh: Option<u64>,
    srtt: Option<Duration>,
    pacer: Option<Pacer>,
    loss_reductions: u64,
    timeouts: u64,
    /// The largest flightsize in the previous and the current period of one SRTT.
    flight_peaks: [u64; 2],
    /// When the current period began.
    peak_period_start: Option<Instant>,
    /// The engine said data was waiting before the next ACK ([`Controller::on_data_waiting`]).
    data_waiting: bool,
    /// The current slow start is regrowth below the quiet delay (not the first one, not
    /// after a CTO).
    regrowing: bool,
    /// The lowest round-trip time seen (the path without queues), once measured.
    min_rtt: Option<Duration>,
    /// A decrease in progress: when it began and the window (1/65536 bytes) no decrease may go
    /// below until a round trip later. The delay the ACKs of that round trip carry is the
    /// queue the window before the decrease built; shrinking on it again undershoots.
    decrease_floor: Option<(Instant, u64)>,
    /// Decreases on the delay in consecutive round trips, the current one not counted.
    decrease_streak: u32,
}

impl Ledbat {
    /// The initial state of RFC 6817 §2.4.2 for DATA datagrams of up to
    /// `mss` bytes (clamped to 1..=65 535): `cwnd = INIT_CWND·MSS`, `CTO = 1 s`, every base
    /// delay +∞, no current delays, `last_rollover = −∞`, nothing in flight.
    pub fn new(config: LedbatConfig, now: Instant, mss: u64) -> Self {
        let mss = mss.clamp(1, MAX_MSS);
        let init = config.init_cwnd.max(config.min_cwnd);
        Self {
            mss,
            cwnd: (init * mss) << FRACTION_BITS,
            flight: 0,
            current: VecDeque::with_capacity(config.current_filter),
            base: core::iter::repeat_n(None, config.base_history).collect(),
            last_rollover_minute: None,
            queuing_delay: None,
            cto: config.initial_cto.min(config.max_cto),
            cto_started: None,
            last_loss_reduction: None,
            slow_start: config.slow_start,
            ssthresh: None,
            srtt: None,
            pacer: config.pacing.map(|p| Pacer::new(&p, mss, now)),
            loss_reductions: 0,
            timeouts: 0,
            flight_peaks: [0; 2],
            peak_period_start: None,
            data_waiting: false,
            regrowing: false,
            min_rtt: None,
            decrease_floor: None,
            decrease_streak: 0,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LedbatConfig {
        &self.config
    }

    /// The MSS in bytes.
    pub fn mss(&self) -> u64 {
        self.mss
    }

    /// Whether the controller is in slow start.
    pub fn in_slow_start(&self) -> bool {
        self.slow_start
    }

    /// The latest queuing delay estimate (FILTER(current) − MIN(base)), once there is a sample.
    pub fn queuing_delay(&self) -> Option<Duration> {
        self.queuing_delay.map(Duration::from_micros)
    }

    /// MIN(base_delays) in µs, or `None` while every slot is +∞.
    pub fn base_delay(&self) -> Option<i64> {
        self.base.iter().flatten().copied().min()
    }

    /// The current congestion timeout.
    pub fn congestion_timeout(&self) -> Duration {
        self.cto
    }

    /// update_base_delay (RFC 6817 §2.4.2).
    fn update_base_delay(&mut self, now: Instant, delay: i64) {
        let minute = now.as_micros() / MICROS_PER_MINUTE;
        match self.last_rollover_minute {
            // Same minute (or a driver that moved time backwards): lower the newest minimum.
            Some(last) if minute <= last => {
                if let Some(tail) = self.base.back_mut() {
                    *tail = Some(tail.map_or(delay, |t| t.min(delay)));
                }
            }
            last => {
                // Each whole minute that passed without a sample keeps +∞ in its slot, so
                // after BASE_HISTORY idle minutes measurement starts anew (L-2.4-k).
                let idle = last.map_or(0, |l| minute - l - 1);
                let idle = usize::try_from(idle)
                    .unwrap_or(usize::MAX)
                    .min(self.base.len());
                for _ in 0..idle {
                    self.push_base(None);
                }
                self.push_base(Some(delay));
                self.last_rollover_minute = Some(minute);
            }
        }
    }

    fn push_base(&mut self, slot: Option<i64>) {
        self.base.pop_front();
        self.base.push_back(slot);
    }

    /// update_current_delay: drop the oldest sample, append the new one (L-2.4-d).
    fn update_current_delay(&mut self, now: Instant, delay: i64) {
        if self.current.len() >= self.config.current_filter {
            self.current.pop_front();
        }
        self.current.push_back((now, delay));
    }

    /// FILTER(current_delays) − MIN(base_delays) in µs, never negative (L-2.4-e).
    fn filtered_queuing_delay(&self, now: Instant) -> Option<u64> {
        let &(_, newest) = self.current.back()?;
        let current = match self.config.filter {
            DelayFilter::Null => newest,
            // L-2.5-e: samples older than one RTT are not used; the newest always is.
            DelayFilter::Min => self
                .current
                .iter()
                .filter(|(at, _)| self.srtt.is_none_or(|rtt| now - *at <= rtt))
                .map(|&(_, d)| d)
                .fold(newest, i64::min),
        };
        let base = self.base_delay()?;
        let queuing = (i128::from(current) - i128::from(base)).max(0);
        Some(u64::try_from(queuing).unwrap_or(u64::MAX))
    }

    /// GAIN · off_target · bytes_acked · MSS / cwnd, in 1/65536 bytes (L-2.4-e, L-2.5-c).
    fn delay_based_change(&self, queuing_delay: u64, bytes_acked: u64) -> i128 {
        let target = i128::from(duration_micros(self.config.target));
        // Beyond MAX_QUEUING_DELAY the window is at its floor anyway; the bound keeps the
        // product below 2^118.
        let off = target - i128::from(queuing_delay.min(MAX_QUEUING_DELAY));
        let gain = i128::from(if off >= 0 {
            self.config.gain_permille
        } else {
            self.config.decrease_gain_permille
        });
        let acked = i128::from(bytes_acked.min(MAX_ACKED_PER_CALL));
        let cwnd_bytes = i128::from((self.cwnd >> FRACTION_BITS).max(1));
        // ≤ 2^14 · 2^37 · 2^32 · 2^16 · 2^16 = 2^115 in magnitude.
        let numerator = (gain * off * acked * i128::from(self.mss)) << FRACTION_BITS;
        let additive = numerator / (1_000 * target * cwnd_bytes);
        if off >= 0 || !self.config.multiplicative_decrease {
            return additive;
        }
        // Above TARGET, the window shrinks in proportion to itself (as LEDBAT++ does): by the
        // share the queue exceeds TARGET per round trip, at most half. An additive decrease of
        // at most one MSS per round trip takes minutes to make room for a TCP flow on a large
        // window.
        let over = (-off).min(target / 2);
        let multiplicative = -((acked * over) << FRACTION_BITS) / target;
        additive.min(multiplicative)
    }

    /// The queuing delay below which the path counts as unqueued (µs; 0 when regrowth is off).
    fn quiet_delay(&self) -> u64 {
        duration_micros(self.config.target) * u64::from(self.config.regrow_below_permille) / 1_000
    }

    fn slow_start_exit_delay(&self) -> u64 {
        duration_micros(self.config.target) * u64::from(self.config.slow_start_exit_permille)
            / 1_000
    }

    fn min_window(&self) -> u64 {
        (self.config.min_cwnd * self.mss) << FRACTION_BITS
    }

    fn note_rtt(&mut self, rtt: &RttEstimator) {
        self.srtt = rtt.smoothed().or(self.srtt);
        self.min_rtt = rtt.min().or(self.min_rtt);
    }

    /// The floor of a delay-based decrease that begins now with `queuing` µs of queue.
    ///
    /// The first decrease goes to the window that leaves TARGET of queue, `cwnd · (min_rtt +
    /// TARGET) / (min_rtt + queuing)` (the window above the path's capacity is what sits in
    /// the queue), never below half. The floor holds for a round trip. A queue still above
    /// TARGET right after that is not ours alone (a TCP flow fills it): each further round
    /// trip of it halves the window, so LEDBAT steps aside as fast as before.
    fn decrease_floor(&mut self, now: Instant, queuing: u64) -> u64 {
        let period = self.srtt.unwrap_or(self.cto);
        let mut consecutive = false;
        if let Some((start, floor)) = self.decrease_floor {
            let since = now.saturating_duration_since(start);
            if since < period {
                return floor;
            }
            consecutive = since < period * 2;
        }
        self.decrease_streak = if consecutive {
            self.decrease_streak.saturating_add(1)
        } else {
            0
        };
        let keep = if self.decrease_streak >= STREAK_TO_HALVE {
            500
        } else {
            let base = self.min_rtt.map_or(0, duration_micros);
            let target = duration_micros(self.config.target);
            let keep = u128::from(base + target) * 1_000
                / u128::from(base + queuing.min(MAX_QUEUING_DELAY)).max(1);
            keep.clamp(500, 1_000)
        };
        let floor = (u128::from(self.cwnd) * keep / 1_000) as u64;
        self.decrease_floor = Some((now, floor));
        floor
    }

    /// Records the current flightsize in the per-SRTT peaks.
    fn note_flight(&mut self, now: Instant) {
        let period = self.srtt.unwrap_or(self.cto);
        match self.peak_period_start {
            Some(start) if now.saturating_duration_since(start) < period => {}
            Some(start) if now.saturating_duration_since(start) < period * 2 => {
                self.flight_peaks = [self.flight_peaks[1], self.flight];
                self.peak_period_start = Some(now);
            }
            // The first event, or a whole period without any: the flight stood still.
            _ => {
                self.flight_peaks = [self.flight; 2];
                self.peak_period_start = Some(now);
            }
        }
        self.flight_peaks[1] = self.flight_peaks[1].max(self.flight);
    }

    /// The flightsize the application-limited clamp allows growth from (L-2.4-f).
    fn clamp_flightsize(&self, flight_before: u64) -> u64 {
        if self.config.flightsize_over_rtt {
            flight_before
                .max(self.flight_peaks[0])
                .max(self.flight_peaks[1])
        } else {
            flight_before
        }
    }

    fn pacing_rate(&self) -> Option<Rate> {
        self.pacer
            .as_ref()?
            .rate(self.window(), self.srtt, self.slow_start)
    }
}

impl Controller for Ledbat {
    fn on_sent(&mut self, now: Instant, bytes: u64) {
        if self.flight == 0 {
            // The CTO clock starts when data enters an empty pipe.
            self.cto_started = Some(now);
        }
        self.flight = self.flight.saturating_add(bytes);
        self.note_flight(now);
        let rate = self.pacing_rate();
        if let Some(pacer) = &mut self.pacer {
            pacer.on_sent(now, bytes, rate);
        }
    }

    fn on_ack(
        &mut self,
        now: Instant,
        bytes_acked: u64,
        one_way_delay: Option<i64>,
        rtt: &RttEstimator,
    ) {
        self.note_rtt(rtt);
        // flightsize is the data outstanding before this ACK (L-2.4-f).
        let flight_before = self.flight;
        self.note_flight(now);
        if let Some(delay) = one_way_delay {
            self.update_base_delay(now, delay);
            self.update_current_delay(now, delay);
        }
        if let Some(queuing) = self.filtered_queuing_delay(now) {
            self.queuing_delay = Some(queuing);
        }
        // An ACK without a sample reuses the last estimate; before any sample the queue counts
        // as empty.
        let queuing = self.queuing_delay.unwrap_or(0);
        let acked = bytes_acked.min(MAX_ACKED_PER_CALL);
        let allowed_increase = self.config.allowed_increase * self.mss;

        let quiet = self.quiet_delay();
        if !self.slow_start && self.queuing_delay.is_some() && queuing < quiet {
            // No queue: grow as slow start does (at ×1.5 per round trip), until the queue that
            // ends slow start shows again.
            self.slow_start = true;
            self.regrowing = true;
        }
        if self.slow_start && queuing > self.slow_start_exit_delay() {
            self.slow_start = false;
        }
        let (grown, headroom) = if self.slow_start {
            // Slow start (L-2.2-c): cwnd += bytes_newly_acked, doubling per RTT, capped at
            // ssthresh after a CTO.
            // Regrowth (slow start again on a path that showed a queue before) goes ×1.5 per
            // round trip: the delay that ends it shows a round trip late, and a doubling
            // window overflows a drop-tail queue before that.
            let inc = if self.regrowing { acked / 2 } else { acked };
            let mut grown = i128::from(self.cwnd) + (i128::from(inc) << FRACTION_BITS);
            if let Some(ssthresh) = self.ssthresh {
                if grown >= i128::from(ssthresh) {
                    grown = i128::from(ssthresh.max(self.cwnd));
                    self.slow_start = false;
                }
            }
            // The window counts as full when less than one datagram of it is free (a chunk
            // does not fit a fraction of a datagram): slow start doubles per round trip then.
            (grown, allowed_increase + acked)
        } else {
            // L-2.4-e: cwnd += GAIN · off_target · bytes_newly_acked · MSS / cwnd.
            let change = self.delay_based_change(queuing, acked);
            let mut grown = i128::from(self.cwnd) + change;
            if change < 0 && self.config.multiplicative_decrease {
                let floor = self.decrease_floor(now, queuing).min(self.cwnd);
                grown = grown.max(i128::from(floor));
            }
            (grown, allowed_increase)
        };
        // L-2.4-f, L-2.4-l: cwnd ≤ flightsize + ALLOWED_INCREASE·MSS, then cwnd ≥ MIN_CWND·MSS.
        let flightsize = self.clamp_flightsize(flight_before);
        // A sender whose data waited for the window or the pacer is not application-limited
        // (RFC 7661): its window is in use, and the clamp would cap slow start at the flight
        // the pacer let out, well under a doubling per round trip.
        let window_limited =
            core::mem::take(&mut self.data_waiting) && self.config.flightsize_over_rtt;
        let max_allowed = if window_limited {
            i128::from(MAX_CWND)
        } else {
            (i128::from(flightsize) + i128::from(headroom)) << FRACTION_BITS
        };
        let cwnd = grown
            .min(max_allowed)
            .max(i128::from(self.min_window()))
            .min(i128::from(MAX_CWND));
        // In [MIN_CWND·MSS, MAX_CWND] ⊂ u64 by the clamps just above.
        self.cwnd = cwnd as u64;
        self.flight = flight_before.saturating_sub(bytes_acked);
        // update_CTO (L-2.4-a): the CTO is the RFC 6298 RTO, and restarts with every ACK.
        self.cto = rtt.rto().min(self.config.max_cto);
        self.cto_started = (self.flight > 0).then_some(now);
    }

    fn on_data_waiting(&mut self, _now: Instant) {
        self.data_waiting = true;
    }

    fn on_loss(&mut self, now: Instant, lost_bytes: u64, rtt: &RttEstimator) {
        self.note_rtt(rtt);
        // L-2.4-h: data that will not be retransmitted leaves flightsize. In PPSPP a resend
        // is a new send, so all lost bytes leave.
        self.flight = self.flight.saturating_sub(lost_bytes);
        if self.flight == 0 {
            self.cto_started = None;
        }
        // L-2.4-h, M-4: react at most once per RTT.
        let rtt_span = rtt.smoothed().unwrap_or_else(|| rtt.rto());
        if let Some(last) = self.last_loss_reduction {
            if now.saturating_duration_since(last) < rtt_span {
                return;
            }
        }
        self.last_loss_reduction = Some(now);
        // L-2.4-h: cwnd = min(cwnd, max(cwnd/2, MIN_CWND·MSS)); a loss with no queue behind
        // it takes less (`quiet_loss_permille`).
        let quiet = self.queuing_delay.is_some_and(|q| q < self.quiet_delay());
        let keep = if quiet {
            u128::from(self.config.quiet_loss_permille)
        } else {
            500
        };
        if !quiet {
            self.slow_start = false;
        }
        let reduced = (u128::from(self.cwnd) * keep / 1_000) as u64;
        self.cwnd = self.cwnd.min(reduced.max(self.min_window()));
        if self.config.multiplicative_decrease {
            // The loss is this round trip's decrease: the delay its ACKs still carry is the
            // queue the window before it built.
            self.decrease_floor = Some((now, self.cwnd));
        }
        self.loss_reductions = self.loss_reductions.saturating_add(1);
    }

    fn on_timeout(&mut self, now: Instant) {
        match self.cto_deadline() {
            Some(deadline) if now >= deadline => {}
            // Nothing outstanding, or a spurious early call.
            _ => return,
        }
        // L-2.4-i: cwnd = 1·MSS and the CTO backs off exponentially, up to the cap (L-2.4-b).
        // The CTO is this RTT's congestion reaction: losses the caller declares for the data
        // that was outstanding do not halve the window again (L-2.4-h, once per RTT).
        self.last_loss_reduction = Some(now);
        if self.config.slow_start {
            self.ssthresh = Some((self.cwnd / 2).max(self.min_window()));
            self.slow_start = true;
            self.regrowing = false;
        }
        self.cwnd = self.mss << FRACTION_BITS;
        self.cto = self.cto.saturating_mul(2).min(self.config.max_cto);
        self.cto_started = Some(now);
        self.timeouts = self.timeouts.saturating_add(1);
    }

    fn cto_deadline(&self) -> Option<Instant> {
        if self.flight == 0 {
            return None;
        }
        self.cto_started.map(|t| t + self.cto)
    }

    fn window(&self) -> u64 {
        self.cwnd >> FRACTION_BITS
    }

    fn bytes_in_flight(&self) -> u64 {
        self.flight
    }

    fn next_send_time(&self, now: Instant, bytes: u64) -> Option<Instant> {
        if !self.can_send(bytes) {
            return None;
        }
        Some(match &self.pacer {
            Some(pacer) => pacer.next_send_time(now, bytes, self.pacing_rate()),
            None => now,
        })
    }

    fn metrics(&self) -> ControllerMetrics {
        ControllerMetrics {
            window: self.window(),
            bytes_in_flight: self.flight,
            slow_start: self.slow_start,
            queuing_delay: self.queuing_delay(),
            base_delay_micros: self.base_delay(),
            congestion_timeout: Some(self.cto),
            pacing_rate: self.pacing_rate().map(|r| r.bytes_per_second()),
            loss_reductions: self.loss_reductions,
            timeouts: self.timeouts,
        }
    }
}

/// Round trips in a row of a queue above TARGET after which each decrease halves the window.
const STREAK_TO_HALVE: u32 = 2;
/// Fractional bits of the fixed-point window.
const FRACTION_BITS: u32 = 16;
/// The largest window, 1 TiB, in 1/65536 bytes (2^56: far from overflow).
const MAX_CWND: u64 = 1 << (40 + FRACTION_BITS);
/// The largest MSS: a UDP datagram cannot be larger.
const MAX_MSS: u64 = 65_535;
/// Bytes one ACK can acknowledge for the window update (4 GiB; more is absurd).
const MAX_ACKED_PER_CALL: u64 = 1 << 32;
/// Queuing delays beyond about 19 hours are treated as 19 hours.
const MAX_QUEUING_DELAY: u64 = 1 << 36;
const MICROS_PER_MINUTE: u64 = 60_000_000;
const MIN_TARGET: Duration = Duration::from_millis(1);
const MAX_TARGET: Duration = Duration::from_millis(100);
const MIN_MAX_CTO: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests;
