//! What the blocking [`Driver`](crate::Driver) and the tokio
//! [`AsyncDriver`](crate::tokio_driver::AsyncDriver) share: the engine with its clock and
//! batched socket I/O, and every step of a loop turn that does not depend on how the driver
//! waits. A driver only supplies the waiting (epoll through mio, or tokio readiness) and the
//! flush of a full batch; the order of the steps is the engine's drain contract:
//!
//! 1. [`Core::fill`]: move every datagram the engine has into the send batch;
//! 2. wait until the socket is readable or [`Core::deadline`] passes;
//! 3. [`Core::feed`] up to [`RECV_BATCHES`] batches of received datagrams to the engine,
//!    sending between batches so acknowledgements go out promptly;
//! 4. [`Core::fire_timer`], then send again.
//!
//! `run_until` in both drivers is [`drain_events`] plus [`time_left`] around a turn.

use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
#[cfg(unix)]
use std::os::fd::AsFd;
use std::time::Duration;

use ppspp_core::time::Instant;
use ppspp_core::{Endpoint, Event};

use crate::clock::Clock;
use crate::driver::DriverConfig;
use crate::socket::{self, BatchIo};

/// Receive batches fed to the engine in one turn, so timers and sends are not starved under
/// a flood.
pub(crate) const RECV_BATCHES: usize = 64;

/// How long `run_until` waits per turn when it has no deadline.
const IDLE_WAIT: Duration = Duration::from_secs(3600);

/// The engine, its clock, the socket's batched I/O and the bound address.
pub(crate) struct Core {
    pub(crate) endpoint: Endpoint,
    pub(crate) clock: Clock,
    pub(crate) io: BatchIo,
    pub(crate) local: SocketAddr,
}

/// What [`Core::fill`] stopped on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fill {
    /// The engine has nothing more to send.
    Drained,
    /// The send batch is full: flush it, then fill again.
    BatchFull,
    /// The caller's budget (a rate limit) held the rest back.
    Held,
}

impl Core {
    /// Binds a UDP socket to `addr` and creates the engine on it. Returns the socket for the
    /// driver to wrap (mio or tokio; batched I/O works on the same descriptor).
    pub(crate) fn bind(
        addr: SocketAddr,
        config: DriverConfig,
    ) -> io::Result<(std::net::UdpSocket, Self)> {
        let std_socket = socket::bind(addr, &config.socket)?;
        let local = std_socket.local_addr()?;
        let io = BatchIo::new(&std_socket, &config.socket)?;
        let clock = Clock::new();
        let mut ecfg = config.endpoint;
        ecfg.unix_time_at_zero(clock.unix_micros_at_zero());
        let endpoint = Endpoint::new(ecfg, clock.now());
        Ok((
            std_socket,
            Self {
                endpoint,
                clock,
                io,
                local,
            },
        ))
    }

    /// When the wait of this turn ends: `max_wait` from `now`, or sooner if the engine's
    /// timer (or `also`, e.g. the rate limit's next send) is due sooner.
    pub(crate) fn deadline(
        &self,
        now: Instant,
        max_wait: Duration,
        also: Option<Instant>,
    ) -> Instant {
        let mut deadline = now + max_wait;
        if let Some(t) = self.endpoint.poll_timeout() {
            deadline = deadline.min(t);
        }
        if let Some(t) = also {
            deadline = deadline.min(t);
        }
        deadline
    }

    /// Moves the engine's datagrams into the send batch. With a `budget` (a rate limit's
    /// tokens, in bytes), only while it is positive, taking each datagram's size from it.
    pub(crate) fn fill(&mut self, now: Instant, mut budget: Option<&mut f64>) -> Fill {
        loop {
            if budget.as_deref().is_some_and(|b| *b <= 0.0) {
                return Fill::Held;
            }
            let Some(slot) = self.io.send_slot() else {
                return Fill::BatchFull;
            };
            let Some(t) = self.endpoint.poll_transmit(now, slot) else {
                return Fill::Drained;
            };
            if let Some(b) = budget.as_deref_mut() {
                *b -= t.size as f64;
            }
            self.io.commit(t.destination, t.size);
        }
    }

    /// Feeds one batch of received datagrams to the engine. `Err(WouldBlock)` when none
    /// were waiting.
    #[cfg(unix)]
    pub(crate) fn feed<S: AsFd>(&mut self, socket: &S) -> io::Result<usize> {
        let now = self.clock.now();
        let ep = &mut self.endpoint;
        self.io
            .recv(socket, |from, data| ep.handle_datagram(now, from, data))
    }

    /// Hands the engine its timer if it is due.
    pub(crate) fn fire_timer(&mut self) -> Instant {
        let now = self.clock.now();
        if self.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            self.endpoint.handle_timeout(now);
        }
        now
    }

    /// Removes every swarm: the engine queues closing handshakes (RFC 7574 §3.1.1) for every
    /// channel, which the driver then sends.
    pub(crate) fn remove_swarms(&mut self) {
        let now = self.clock.now();
        let swarms: Vec<_> = self.endpoint.swarms().collect();
        for s in swarms {
            self.endpoint.remove_swarm(now, s);
        }
    }
}

/// Hands queued events to `f` until it breaks (`Some` of its value) or none are left.
pub(crate) fn drain_events<D, T>(
    driver: &mut D,
    endpoint: impl Fn(&mut D) -> &mut Endpoint,
    f: &mut impl FnMut(&mut D, Event) -> ControlFlow<T>,
) -> Option<T> {
    while let Some(ev) = endpoint(driver).poll_event() {
        if let ControlFlow::Break(v) = f(driver, ev) {
            return Some(v);
        }
    }
    None
}

/// The longest a `run_until` turn may wait: what is left until `deadline` (`None` once it
/// passed), or an hour without one.
pub(crate) fn time_left(deadline: Option<std::time::Instant>) -> Option<Duration> {
    match deadline {
        Some(d) => {
            let left = d.saturating_duration_since(std::time::Instant::now());
            (!left.is_zero()).then_some(left)
        }
        None => Some(IDLE_WAIT),
    }
}
