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

use crate::driver::DriverConfig;
use crate::skeleton::{self, Core, Fill, RECV_BATCHES};
use crate::socket::SocketStats;

/// A PPSPP endpoint on a UDP socket, driven by a tokio task. The send rate limit of
/// [`DriverConfig`] is not applied here.
pub struct AsyncDriver {
    core: Core,
    socket: UdpSocket,
}

impl std::fmt::Debug for AsyncDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncDriver")
            .field("local", &self.core.local)
            .field("endpoint", &self.core.endpoint)
            .finish_non_exhaustive()
    }
}

impl AsyncDriver {
    /// Binds a UDP socket to `addr` and creates the endpoint. Must be called within a tokio
    /// runtime (with I/O and time enabled).
    pub fn bind(addr: SocketAddr, config: DriverConfig) -> io::Result<Self> {
        let (std_socket, core) = Core::bind(addr, config)?;
        let socket = UdpSocket::from_std(std_socket)?;
        Ok(Self { core, socket })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.core.local
    }

    /// The current time on the engine's clock.
    pub fn now(&self) -> Instant {
        self.core.clock.now()
    }

    /// The engine.
    pub fn endpoint(&self) -> &Endpoint {
        &self.core.endpoint
    }

    /// The engine, for commands; what they queue is sent at the next turn.
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.core.endpoint
    }

    /// The next event the engine reported, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.endpoint.poll_event()
    }

    /// The socket layer's counters.
    pub fn socket_stats(&mut self) -> SocketStats {
        self.core.io.stats()
    }

    /// Sends every datagram the engine has, waiting for the socket when it is full.
    async fn transmit(&mut self) -> io::Result<()> {
        loop {
            let now = self.core.clock.now();
            let fill = self.core.fill(now, None);
            loop {
                let Self { socket, core } = self;
                match socket.try_io(Interest::WRITABLE, || core.io.flush(&*socket)) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.socket.writable().await?;
                    }
                    Err(e) => return Err(e),
                }
            }
            if fill != Fill::BatchFull {
                return Ok(());
            }
        }
    }

    /// One turn: send, wait at most `max_wait` (less if the engine's timer is due sooner) for
    /// datagrams, feed them and the timer to the engine, send again.
    pub async fn turn(&mut self, max_wait: Duration) -> io::Result<()> {
        self.transmit().await?;
        let now = self.core.clock.now();
        let deadline = self.core.deadline(now, max_wait, None);
        let until = tokio::time::Instant::from_std(self.core.clock.to_std(deadline));
        // Either readable or the deadline; both lead to the same work below.
        let _ = tokio::time::timeout_at(until, self.socket.readable()).await;
        self.receive_and_fire().await?;
        self.transmit().await
    }

    /// Feeds what the socket holds (a few batches, answering each), then runs due timers.
    async fn receive_and_fire(&mut self) -> io::Result<()> {
        for _ in 0..RECV_BATCHES {
            let Self { socket, core } = self;
            match socket.try_io(Interest::READABLE, || core.feed(&*socket)) {
                Ok(_) => self.transmit().await?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        self.core.fire_timer();
        Ok(())
    }

    /// One turn like [`turn`](Self::turn) that also ends its wait when `wake` completes
    /// (a command for the engine arrived), returning `wake`'s output if it did. `wake` is
    /// dropped when the turn ends either way, so it must be cancel-safe (as
    /// `tokio::sync::mpsc::Receiver::recv` is).
    pub async fn turn_or<T>(
        &mut self,
        max_wait: Duration,
        wake: impl Future<Output = T>,
    ) -> io::Result<Option<T>> {
        self.transmit().await?;
        let now = self.core.clock.now();
        let deadline = self.core.deadline(now, max_wait, None);
        let until = tokio::time::Instant::from_std(self.core.clock.to_std(deadline));
        let woken = tokio::select! {
            _ = tokio::time::sleep_until(until) => None,
            _ = self.socket.readable() => None,
            v = wake => Some(v),
        };
        self.receive_and_fire().await?;
        self.transmit().await?;
        Ok(woken)
    }

    /// Runs the loop, handing each event to `f`, until `f` breaks (`Some` of its value) or
    /// `deadline` passes (`None`).
    pub async fn run_until<T>(
        &mut self,
        deadline: Option<tokio::time::Instant>,
        mut f: impl FnMut(&mut Self, Event) -> ControlFlow<T>,
    ) -> io::Result<Option<T>> {
        let deadline = deadline.map(tokio::time::Instant::into_std);
        loop {
            if let Some(v) = skeleton::drain_events(self, |d| &mut d.core.endpoint, &mut f) {
                return Ok(Some(v));
            }
            let Some(max_wait) = skeleton::time_left(deadline) else {
                return Ok(None);
            };
            self.turn(max_wait).await?;
        }
    }

    /// Closes every channel with closing handshakes, sends them and removes the swarms.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.core.remove_swarms();
        self.transmit().await
    }
}
