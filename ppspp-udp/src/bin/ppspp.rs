//! The `ppspp` command-line program.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ppspp_udp::cli;

/// Share and download files and live streams peer to peer with PPSPP (RFC 7574): every
/// chunk verified against the swarm ID, downloads resumable, interoperable with libswift.
#[derive(Debug, Parser)]
#[command(name = "ppspp", version)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish files (or a directory): print each swarm ID, the address and a link, and
    /// serve them until interrupted.
    Seed(cli::seed::Args),
    /// Download a swarm from peers, verifying every chunk; resumable.
    Get(cli::get::Args),
    /// One long-running process for many swarms on one socket, with an HTTP control API,
    /// a gateway that players read while the content downloads, and a web page.
    #[cfg(feature = "serve")]
    Serve(cli::serve::Args),
    /// Live streaming: inject a stream (`live source`) or join one (`live get`).
    Live(cli::live::Args),
    /// Run a PPSTP (RFC 7846) tracker over HTTP: print `tracker URL` and tell peers about
    /// each other until interrupted.
    Tracker(cli::tracker::Args),
    /// Print the Merkle root hash (the swarm ID) of a file, as `ppspp seed` would.
    Hash(cli::hash::Args),
    /// Decode one datagram given as hex, or every PPSPP datagram of a pcap/pcapng capture,
    /// and print the messages, one per line.
    Decode(cli::decode::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout: `ppspp man > ppspp.1`.
    Man,
}

fn main() -> ExitCode {
    let cli: Cli = ppspp_cli_args::parse();
    cli::logging::init(cli.verbose);
    let code = match cli.command {
        Command::Decode(args) => cli::decode::run(&args),
        Command::Hash(args) => cli::hash::run(&args),
        Command::Seed(args) => cli::seed::run(&args),
        Command::Get(args) => cli::get::run(&args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => cli::serve::run(&args),
        Command::Live(args) => cli::live::run(&args),
        Command::Tracker(args) => cli::tracker::run(&args),
        Command::Completions { shell } => {
            let mut cmd = ppspp_cli_args::command::<Cli>();
            clap_complete::generate(shell, &mut cmd, "ppspp", &mut std::io::stdout());
            0
        }
        Command::Man => {
            let cmd = ppspp_cli_args::command::<Cli>();
            match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("ppspp man: {e}");
                    1
                }
            }
        }
    };
    ExitCode::from(code)
}
