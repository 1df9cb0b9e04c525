//! The blocking driver: one [`Endpoint`] on one non-blocking UDP socket, run on the calling
//! thread.
//!
//! Each turn of the loop follows the engine's drain contract: send every datagram the engine
//! has (batched into GSO sends), wait until the socket is readable or the engine's timer is
//! due, feed every received datagram (batched `recvmmsg`, GRO), then the timer; events stay
//! queued in the engine for the caller to drain with [`Driver::poll_event`] (or through
//! [`Driver::run_until`]).

use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mio::{Events, Interest, Poll, Token, Waker};
use ppspp_core::time::Instant;
use ppspp_core::{Endpoint, EndpointConfig, Event};

use crate::clock::Clock;
use crate::skeleton::{self, Core, Fill, RECV_BATCHES};
use crate::socket::{SocketConfig, SocketStats};

const SOCKET: Token = Token(0);
/// The kernel timer's granularity: epoll sleeps whole milliseconds (see [`Driver::turn`]).
const SHORT_WAIT: Duration = Duration::from_millis(1);
const WAKER: Token = Token(1);

/// Settings of a driver: the engine's configuration, the socket's, and an optional send
/// rate limit.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// The engine's configuration. [`DriverConfig::new`] seeds its random generator from the
    /// operating system; the driver sets its wall-clock epoch.
    pub endpoint: EndpointConfig,
    /// Socket buffer sizes.
    pub socket: SocketConfig,
    /// The most bytes per second to send (UDP payload), or `None` for no limit.
    pub max_send_rate: Option<u64>,
}

impl DriverConfig {
    /// Defaults, with an endpoint seeded from operating-system randomness.
    pub fn new() -> Self {
        Self {
            endpoint: EndpointConfig::new(os_seed()),
            socket: SocketConfig::default(),
            max_send_rate: None,
        }
    }
}

impl DriverConfig {
    /// The largest datagram to send, in bytes: sets the engine's limit and, above 1,472
    /// bytes, lets the IP layer fragment (for chunks larger than about 1,400 bytes).
    pub fn max_datagram_size(&mut self, bytes: usize) -> &mut Self {
        self.endpoint.max_datagram_size(bytes);
        self.socket.allow_fragmentation = bytes > 1472;
        self
    }

    /// Sizes datagrams for `chunk_size`-byte chunks: one chunk, its DATA header and a few
    /// hashes fit in one datagram (at least 1,472 bytes).
    pub fn for_chunk_size(&mut self, chunk_size: u32) -> &mut Self {
        let need = (chunk_size as usize).saturating_add(CHUNK_OVERHEAD);
        if need > 1472 {
            self.max_datagram_size(need.min(65_507));
        }
        self
    }
}

/// Room beside a chunk in a datagram: channel ID, DATA header (type, 32-bit chunk range,
/// timestamp) and a few INTEGRITY messages (more go in an earlier datagram).
const CHUNK_OVERHEAD: usize = 4 + 1 + 8 + 8 + 4 * 73;

impl Default for DriverConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// 32 bytes of operating-system randomness, to seed an [`EndpointConfig`] (channel IDs must
/// be unpredictable, RFC 7574 §12.1).
///
/// # Panics
///
/// If the operating system has no randomness to give, which a driver cannot work around.
pub fn os_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the operating system's random generator failed");
    seed
}

/// Counters of a driver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverStats {
    /// The socket layer's counters.
    pub socket: SocketStats,
    /// Loop turns.
    pub turns: u64,
    /// Times the send rate limit held datagrams back.
    pub rate_limited: u64,
    /// Waits shorter than the kernel's millisecond timer, which sleep a whole millisecond.
    pub short_waits: u64,
}

/// Stops a running driver from another thread or a signal handler.
#[derive(Clone, Debug)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl StopHandle {
    /// Asks the driver to stop: [`Driver::run_until`] returns `None` at its next turn and
    /// [`Driver::is_stopped`] becomes true.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }

    /// Whether [`StopHandle::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// Wakes a driver waiting in [`Driver::turn`] from another thread (an HTTP answer is ready),
/// without stopping it.
#[derive(Clone, Debug)]
pub struct WakeHandle(Arc<Waker>);

impl WakeHandle {
    /// Ends the driver's current wait early.
    pub fn wake(&self) {
        let _ = self.0.wake();
    }
}

/// A token bucket for the send rate limit.
#[derive(Debug)]
struct Pacer {
    rate: u64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Pacer {
    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate as f64).min(self.burst);
    }

    /// When one more datagram may go.
    fn ready_at(&self) -> Instant {
        if self.tokens > 0.0 {
            return self.last;
        }
        let wait = (-self.tokens + 1.0) / self.rate as f64;
        self.last + Duration::from_secs_f64(wait)
    }
}

/// A PPSPP endpoint on a UDP socket, driven on the calling thread.
///
/// ```no_run
/// use ppspp_udp::{Driver, DriverConfig};
///
/// let mut driver = Driver::bind("127.0.0.1:0".parse()?, DriverConfig::new())?;
/// println!("listening on {}", driver.local_addr());
/// // add swarms with driver.endpoint_mut().add_swarm(driver.now(), ...), then:
/// driver.run_until(None, |_driver, event| {
///     println!("{event:?}");
///     std::ops::ControlFlow::<()>::Continue(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Driver {
    core: Core,
    socket: mio::net::UdpSocket,
    poll: Poll,
    events: Events,
    stop: StopHandle,
    writable_wait: bool,
    pacer: Option<Pacer>,
    turns: u64,
    rate_limited: u64,
    short_waits: u64,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("local", &self.core.local)
            .field("endpoint", &self.core.endpoint)
            .field("io", &self.core.io)
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// Binds a UDP socket to `addr` (port 0 picks a free port; an IPv6 wildcard address also
    /// accepts IPv4) and creates the endpoint.
    pub fn bind(addr: SocketAddr, config: DriverConfig) -> io::Result<Self> {
        let max_send_rate = config.max_send_rate;
        let (std_socket, core) = Core::bind(addr, config)?;
        let mut socket = mio::net::UdpSocket::from_std(std_socket);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut socket, SOCKET, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let now = core.clock.now();
        let pacer = max_send_rate.filter(|&r| r > 0).map(|rate| Pacer {
            rate,
            burst: (rate as f64 / 50.0).max(3000.0),
            tokens: 0.0,
            last: now,
        });
        Ok(Self {
            core,
            socket,
            poll,
            events: Events::with_capacity(8),
            stop: StopHandle {
                flag: Arc::new(AtomicBool::new(false)),
                waker,
            },
            writable_wait: false,
            pacer,
            turns: 0,
            rate_limited: 0,
            short_waits: 0,
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.core.local
    }

    /// The current time on the engine's clock.
    pub fn now(&self) -> Instant {
        self.core.clock.now()
    }

    /// The clock mapping operating-system time to engine time.
    pub fn clock(&self) -> &Clock {
        &self.core.clock
    }

    /// The engine.
    pub fn endpoint(&self) -> &Endpoint {
        &self.core.endpoint
    }

    /// The engine, for commands (`add_swarm`, `connect`, `close`, …). Pass
    /// [`Driver::now`] as their time; what they queue is sent at the next turn.
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.core.endpoint
    }

    /// The next event the engine reported, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.endpoint.poll_event()
    }

    /// A handle that stops the driver from another thread or a signal handler.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// A handle that ends the driver's current wait from another thread.
    pub fn wake_handle(&self) -> WakeHandle {
        WakeHandle(self.stop.waker.clone())
    }

    /// Whether the driver was asked to stop.
    pub fn is_stopped(&self) -> bool {
        self.stop.is_stopped()
    }

    /// Counters of the driver and its socket.
    pub fn stats(&mut self) -> DriverStats {
        DriverStats {
            socket: self.core.io.stats(),
            turns: self.turns,
            rate_limited: self.rate_limited,
            short_waits: self.short_waits,
        }
    }

    /// One turn of the loop: sends what the engine has, waits at most `max_wait` (less if
    /// the engine's timer is due sooner) for datagrams, feeds them and the timer to the
    /// engine, and sends again. Events stay queued for [`Driver::poll_event`].
    pub fn turn(&mut self, max_wait: Duration) -> io::Result<()> {
        self.turns += 1;
        let now = self.core.clock.now();
        let next_send = self.transmit(now)?;
        let now = self.core.clock.now();
        let wait = self
            .core
            .deadline(now, max_wait, next_send)
            .saturating_duration_since(now);
        // epoll waits in whole milliseconds (mio rounds up). A pacing deadline microseconds
        // away therefore sleeps up to a millisecond: the engine's pacer keeps the credit that
        // accrues meanwhile (its bucket holds 2 ms at the pacing rate) and the next turn sends
        // it in one batch, which costs far less than spinning until each datagram is due.
        if !wait.is_zero() && wait < SHORT_WAIT {
            self.short_waits += 1;
        }
        match self.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let writable = self
            .events
            .iter()
            .any(|ev| ev.token() == SOCKET && ev.is_writable());
        if writable && self.writable_wait {
            self.writable_wait = false;
            self.poll
                .registry()
                .reregister(&mut self.socket, SOCKET, Interest::READABLE)?;
        }
        self.receive()?;
        let now = self.core.fire_timer();
        self.transmit(now)?;
        Ok(())
    }

    /// Feeds every waiting datagram to the engine (the socket is edge-triggered: read until
    /// it would block), sending between batches so acknowledgements go out promptly.
    fn receive(&mut self) -> io::Result<()> {
        for _ in 0..RECV_BATCHES {
            match self.core.feed(&self.socket) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
            let now = self.core.clock.now();
            self.transmit(now)?;
        }
        // Still more to read: make sure the next turn does not sleep.
        let _ = self.stop.waker.wake();
        Ok(())
    }

    /// Sends every datagram the engine has, within the rate limit. Returns when the rate limit
    /// lets the next one go, if it held any back.
    fn transmit(&mut self, now: Instant) -> io::Result<Option<Instant>> {
        if self.writable_wait {
            return Ok(None);
        }
        if let Some(p) = &mut self.pacer {
            p.refill(now);
        }
        loop {
            let budget = self.pacer.as_mut().map(|p| &mut p.tokens);
            match self.core.fill(now, budget) {
                Fill::Drained => break,
                Fill::Held => {
                    self.rate_limited += 1;
                    let at = self.pacer.as_ref().map(Pacer::ready_at);
                    self.flush()?;
                    return Ok(at);
                }
                Fill::BatchFull => {
                    if !self.flush()? {
                        return Ok(None);
                    }
                }
            }
        }
        self.flush()?;
        Ok(None)
    }

    /// Sends the batch; `false` if the socket is full (then waits for it to drain).
    fn flush(&mut self) -> io::Result<bool> {
        if !self.core.io.has_pending() {
            return Ok(true);
        }
        match self.core.io.flush(&self.socket) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !self.writable_wait {
                    self.writable_wait = true;
                    self.poll.registry().reregister(
                        &mut self.socket,
                        SOCKET,
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                }
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Runs the loop, handing each event to `f`, until `f` breaks (returns `Some` of its
    /// value), `deadline` passes or the driver is stopped (both return `None`).
    pub fn run_until<T>(
        &mut self,
        deadline: Option<std::time::Instant>,
        mut f: impl FnMut(&mut Self, Event) -> ControlFlow<T>,
    ) -> io::Result<Option<T>> {
        loop {
            if let Some(v) = skeleton::drain_events(self, |d| &mut d.core.endpoint, &mut f) {
                return Ok(Some(v));
            }
            if self.is_stopped() {
                return Ok(None);
            }
            let Some(max_wait) = skeleton::time_left(deadline) else {
                return Ok(None);
            };
            self.turn(max_wait)?;
        }
    }

    /// Sends the datagrams still queued (closing handshakes after `close` or
    /// `remove_swarm`), waiting at most `linger` for the socket to take them.
    pub fn flush_pending(&mut self, linger: Duration) -> io::Result<()> {
        let end = std::time::Instant::now() + linger;
        loop {
            let now = self.core.clock.now();
            self.transmit(now)?;
            if !self.core.io.has_pending() || std::time::Instant::now() >= end {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
            if self.writable_wait {
                self.writable_wait = false;
            }
        }
    }

    /// Closes every channel of every swarm with closing handshakes (RFC 7574 §3.1.1), sends
    /// them, and removes the swarms.
    pub fn shutdown(&mut self) -> io::Result<()> {
        self.core.remove_swarms();
        self.flush_pending(Duration::from_millis(500))
    }
}
