//! The `ppspp` command-line program.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ppspp_udp::cli;

/// PPSPP (RFC 7574) peer-to-peer streaming: tools and a client.
#[derive(Debug, Parser)]
#[command(name = "ppspp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode one datagram given as hex, or every PPSPP datagram of a pcap/pcapng capture,
    /// and print the messages, one per line.
    Decode(cli::decode::Args),
    /// Print the Merkle root hash (the swarm ID) of a file.
    Hash(cli::hash::Args),
    /// Publish a file: print its swarm ID, address and link, and serve it until interrupted.
    Seed(cli::seed::Args),
    /// Download a swarm from peers, verifying every chunk; resumable.
    Get(cli::get::Args),
    /// Live streaming: inject a stream (`live source`) or join one (`live get`).
    Live(cli::live::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Decode(args) => cli::decode::run(&args),
        Command::Hash(args) => cli::hash::run(&args),
        Command::Seed(args) => cli::seed::run(&args),
        Command::Get(args) => cli::get::run(&args),
        Command::Live(args) => cli::live::run(&args),
    };
    ExitCode::from(code)
}
