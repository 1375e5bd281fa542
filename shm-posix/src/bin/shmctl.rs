//! `shmctl`: list, inspect and remove the shared-memory segments made by shm.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shm_posix::list::{self, printable, printable_cell, printable_json, Listed, SegmentReport};
use shm_posix::{RemoveError, RemoveOptions};

#[derive(Parser)]
#[command(name = "shmctl", version, about = "List, inspect and remove shm segments in /dev/shm")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the segments made by this library, with size, channels, creator
    /// PID and whether it is alive.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a segment's header, every channel's geometry and counters, and
    /// whether its peers are alive.
    Inspect {
        /// Segment name (`name` or `/name`).
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove a segment by name, or every stale one (creator dead and no
    /// live process holding a role in it). Only segments of this library
    /// (by their magic) are ever removed.
    Rm {
        /// Segment name (`name` or `/name`).
        #[arg(required_unless_present = "stale", conflicts_with = "stale")]
        name: Option<String>,
        /// Remove every segment of this library whose creator is dead and
        /// that no live process uses.
        #[arg(long)]
        stale: bool,
        /// With --stale: only names that start with this (without `/`).
        #[arg(long, requires = "stale")]
        prefix: Option<String>,
        /// Remove the named segment even if its creator or a user is alive.
        #[arg(long, conflicts_with = "stale")]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("shmctl: {}", printable(&message));
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::List { json } => {
            let found = list::list().map_err(|e| format!("cannot read {}: {e}", list::SHM_DIR))?;
            if json {
                let good: Vec<&SegmentReport> = found
                    .iter()
                    .filter_map(|l| match l {
                        Listed::Segment(r) => Some(&**r),
                        Listed::Broken { .. } => None,
                    })
                    .collect();
                println!("{}", printable_json(&serde_json::to_string_pretty(&good).map_err(|e| e.to_string())?));
                return Ok(());
            }
            println!("{:<32} {:>10} {:>9} {:>8} {:<6} CHANNELS", "NAME", "SIZE", "STATE", "CREATOR", "ALIVE");
            for entry in &found {
                match entry {
                    Listed::Segment(r) => {
                        let channels: Vec<String> =
                            r.channels.iter().map(|c| format!("{}:{}", c.kind, printable_cell(&c.name))).collect();
                        println!(
                            "{:<32} {:>10} {:>9} {:>8} {:<6} {}",
                            printable_cell(&r.name),
                            r.size,
                            r.state,
                            r.creator,
                            r.creator_liveness,
                            channels.join(",")
                        );
                    }
                    Listed::Broken { name, error, creator, .. } => {
                        let (pid, alive) = creator.map_or(("-".into(), "-"), |(p, a)| (p.to_string(), yes_no(a)));
                        let (name, error) = (printable_cell(name), printable(&error.to_string()));
                        println!("{name:<32} {:>10} {:>9} {pid:>8} {alive:<6} ({error})", "?", "broken");
                    }
                }
            }
            Ok(())
        }
        Command::Inspect { name, json } => {
            let report = list::inspect(&name).map_err(|e| match e {
                // `inspect` does not wait: the library's advice (a longer
                // timeout) has no shmctl option.
                shm_posix::OpenError::NotFound { name } => {
                    format!("{name}: no such segment in /dev/shm (`shmctl list` shows the segments there)")
                }
                e => format!("{name}: {e}"),
            })?;
            if json {
                println!("{}", printable_json(&serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?));
            } else {
                print_report(&report);
            }
            Ok(())
        }
        Command::Rm { name: Some(name), force, .. } => {
            let removed = shm_posix::remove_with(&name, &RemoveOptions { force, object: None })
                .map_err(|e| format!("{name}: {e}"))?;
            println!("{}", printable(&removed.to_string()));
            Ok(())
        }
        Command::Rm { name: None, prefix, .. } => remove_stale(prefix.as_deref().unwrap_or("")),
    }
}

/// `rm --stale`: every listed segment of ours whose creator is dead, each
/// removed only if, under its lock right before the unlink, the name still
/// holds the object listed, its creator is still dead and no live process
/// holds a role in it.
fn remove_stale(prefix: &str) -> Result<(), String> {
    // Ctrl-C stops between two removals (each one is a few system calls
    // under a lock), and the summary still says what was removed.
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, std::sync::Arc::clone(&interrupted));
    let found = list::list().map_err(|e| format!("cannot read {}: {e}", list::SHM_DIR))?;
    let (mut removed, mut failed) = (0, 0);
    for entry in found {
        if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
            println!("interrupted: {removed} stale segment(s) removed so far");
            return Err("interrupted".into());
        }
        let (name, object, creator) = match entry {
            Listed::Segment(r) => (r.name.clone(), r.object, Some((r.creator, r.creator_alive))),
            Listed::Broken { name, object, creator, .. } => (name, object, creator),
        };
        let stale = matches!(creator, Some((pid, false)) if pid != 0);
        if !stale || !name.trim_start_matches('/').starts_with(prefix) {
            continue;
        }
        match shm_posix::remove_with(&name, &RemoveOptions { force: false, object: Some(object) }) {
            Ok(r) => {
                println!("{}", printable(&r.to_string()));
                removed += 1;
            }
            Err(
                e @ (RemoveError::InUse { .. }
                | RemoveError::Alive { .. }
                | RemoveError::Unjudged { .. }
                | RemoveError::Unreadable { .. }
                | RemoveError::Replaced { .. }),
            ) => {
                println!("kept {}", printable(&format!("{name}: {e}")));
            }
            // Not ours to judge: a name this library does not take (too
            // long for its semaphores' names), or another user's segment
            // this user may not lock. Kept, and not a failure of the sweep:
            // any user can leave such a name in /dev/shm.
            Err(e @ RemoveError::Name(_)) => println!("kept {}", printable(&format!("{name}: {e}"))),
            Err(RemoveError::Io { op, source, .. }) if source.kind() == std::io::ErrorKind::PermissionDenied => {
                println!("kept {}: {op} refused ({source}): another user's segment", printable(&name));
            }
            Err(RemoveError::NotFound { .. }) => {}
            Err(e) => {
                eprintln!("shmctl: {}", printable(&format!("{name}: {e}")));
                failed += 1;
            }
        }
    }
    println!("{removed} stale segment(s) removed");
    if failed > 0 {
        return Err(format!("{failed} stale segment(s) could not be removed"));
    }
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn print_report(r: &SegmentReport) {
    println!("segment    {}", printable(&r.name));
    println!("size       {} bytes", r.size);
    println!("format     {}", r.version);
    println!("state      {}", r.state);
    println!("generation {}", r.generation);
    println!("creator    pid {} ({})", r.creator, r.creator_liveness);
    println!("layout     {}", r.layout_hash);
    for c in &r.channels {
        println!("channel {:?}: {} at {} ({} bytes), {}", c.name, c.kind, c.offset, c.size, c.geometry);
        let counters: Vec<String> = c.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("  {}", counters.join(" "));
        for p in &c.peers {
            let status = match (p.pid, p.alive) {
                (Some(pid), Some(true)) => format!("pid {pid} alive"),
                (Some(pid), _) => format!("pid {pid} dead"),
                (None, _) => "none".to_string(),
            };
            println!("  {}: {status}", p.role);
        }
    }
}
