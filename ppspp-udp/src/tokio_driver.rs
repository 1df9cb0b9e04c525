//! The driver on a tokio runtime (feature `tokio`): the same loop as the blocking
//! [`Driver`](crate::Driver), waiting with `tokio::net::UdpSocket` readiness and
//! `tokio::time::sleep_until` for the engine's timer instead of blocking a thread.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use ppspp_udp::DriverConfig;
//! use ppspp_udp::tokio_driver::AsyncDriver;
//!
//! let mut driver = AsyncDriver::bind("127.0.0.1:0".parse().unwrap(), DriverConfig::new())?;
//! // add swarms with driver.endpoint_mut().add_swarm(driver.now(), ...), then:
//! driver
//!     .run_until(None, |_driver, event| {
//!         println!("{event:?}");
//!         std::ops::ControlFlow::<()>::Continue(())
//!     })
//!     .await?;
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::time::Duration;

use ppspp_core::time::Instant;
use ppspp_core::{Endpoint, Event};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::clock::Clock;
use crate::driver::DriverConfig;
use crate::socket::{self, BatchIo, SocketStats};

/// A PPSPP endpoint on a UDP socket, driven by a tokio task. The send rate limit of
/// [`DriverConfig`] is not applied here.
pub struct AsyncDriver {
    endpoint: Endpoint,
    clock: Clock,
    socket: UdpSocket,
    io: BatchIo,
    local: SocketAddr,
}

impl std::fmt::Debug for AsyncDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncDriver")
            .field("local", &self.local)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl AsyncDriver {
    /// Binds a UDP socket to `addr` and creates the endpoint. Must be called within a tokio
    /// runtime (with I/O and time enabled).
    pub fn bind(addr: SocketAddr, config: DriverConfig) -> io::Result<Self> {
        let std_socket = socket::bind(addr, &config.socket)?;
        let local = std_socket.local_addr()?;
        let socket = UdpSocket::from_std(std_socket)?;
        let io = BatchIo::new(&socket, &config.socket)?;
        let clock = Clock::new();
        let mut ecfg = config.endpoint;
        ecfg.unix_time_at_zero(clock.unix_micros_at_zero());
        Ok(Self {
            endpoint: Endpoint::new(ecfg, clock.now()),
            clock,
            socket,
            io,
            local,
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The current time on the engine's clock.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The engine.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The engine, for commands; what they queue is sent at the next turn.
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// The next event the engine reported, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.endpoint.poll_event()
    }

    /// The socket layer's counters.
    pub fn socket_stats(&mut self) -> SocketStats {
        self.io.stats()
    }

    /// Sends every datagram the engine has, waiting for the socket when it is full.
    async fn transmit(&mut self) -> io::Result<()> {
        loop {
            let now = self.clock.now();
            while let Some(slot) = self.io.send_slot() {
                match self.endpoint.poll_transmit(now, slot) {
                    Some(t) => self.io.commit(t.destination, t.size),
                    None => break,
                }
            }
            let more = self.io.send_slot().is_none();
            loop {
                let Self { socket, io, .. } = self;
                match socket.try_io(Interest::WRITABLE, || io.flush(&*socket)) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.socket.writable().await?;
                    }
                    Err(e) => return Err(e),
                }
            }
            if !more {
                return Ok(());
            }
        }
    }

    /// One turn: send, wait at most `max_wait` (less if the engine's timer is due sooner) for
    /// datagrams, feed them and the timer to the engine, send again.
    pub async fn turn(&mut self, max_wait: Duration) -> io::Result<()> {
        self.transmit().await?;
        let now = self.clock.now();
        let mut deadline = now + max_wait;
        if let Some(t) = self.endpoint.poll_timeout() {
            deadline = deadline.min(t);
        }
        let until = tokio::time::Instant::from_std(self.clock.to_std(deadline));
        // Either readable or the deadline; both lead to the same work below.
        let _ = tokio::time::timeout_at(until, self.socket.readable()).await;
        for _ in 0..64 {
            let now = self.clock.now();
            let Self {
                socket,
                io,
                endpoint,
                ..
            } = self;
            let r = socket.try_io(Interest::READABLE, || {
                io.recv(&*socket, |from, data| {
                    endpoint.handle_datagram(now, from, data)
                })
            });
            match r {
                Ok(_) => self.transmit().await?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        let now = self.clock.now();
        if self.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            self.endpoint.handle_timeout(now);
        }
        self.transmit().await
    }

    /// Runs the loop, handing each event to `f`, until `f` breaks (`Some` of its value) or
    /// `deadline` passes (`None`).
    pub async fn run_until<T>(
        &mut self,
        deadline: Option<tokio::time::Instant>,
        mut f: impl FnMut(&mut Self, Event) -> ControlFlow<T>,
    ) -> io::Result<Option<T>> {
        loop {
            while let Some(ev) = self.endpoint.poll_event() {
                if let ControlFlow::Break(v) = f(self, ev) {
                    return Ok(Some(v));
                }
            }
            let max_wait = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    left
                }
                None => Duration::from_secs(3600),
            };
            self.turn(max_wait).await?;
        }
    }

    /// Closes every channel with closing handshakes, sends them and removes the swarms.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        let now = self.clock.now();
        let swarms: Vec<_> = self.endpoint.swarms().collect();
        for s in swarms {
            self.endpoint.remove_swarm(now, s);
        }
        self.transmit().await
    }
}
