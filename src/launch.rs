//! Launching a run across processes (docs/training.md §Across machines): `train`'s flags
//! in torchrun's spelling, resolved against torchrun's environment variables, and the
//! local launcher that starts every rank on this machine (`--nnodes N --local`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use growlm_train::{Distributed, TrainError};

/// `train`'s flags for a run across processes; each falls back to torchrun's variable.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DistArgs {
    /// Processes in a run across processes or machines (or `WORLD_SIZE`).
    #[arg(long)]
    pub nnodes: Option<u32>,
    /// This process's rank, 0 to nnodes − 1 (or `RANK`); rank 0 runs the orchestrator.
    #[arg(long)]
    pub node_rank: Option<u32>,
    /// Rank 0's host as every rank reaches it (or `MASTER_ADDR`) [default: 127.0.0.1].
    #[arg(long)]
    pub master_addr: Option<String>,
    /// The first orchestrator's port on rank 0 (or `MASTER_PORT`); the run takes the 64·(nnodes+1) from it on [default: 29500].
    #[arg(long)]
    pub master_port: Option<u16>,
    /// With --nnodes N: start the N ranks on this machine (127.0.0.1); rank r > 0 runs in OUT/ranks/r.
    #[arg(long, requires = "nnodes")]
    pub local: bool,
}

impl DistArgs {
    /// This process's place: from the flags, else from the environment; `None` alone.
    pub fn resolve(&self) -> Result<Option<Distributed>, TrainError> {
        let Some(nnodes) = self.nnodes else {
            return Distributed::from_env();
        };
        if nnodes == 1 {
            return Ok(None);
        }
        let rank = self
            .node_rank
            .or_else(|| std::env::var("RANK").ok().and_then(|r| r.parse().ok()))
            .ok_or_else(|| TrainError::Config {
                key: "node-rank".into(),
                reason: format!("--nnodes {nnodes} needs --node-rank (or RANK), or --local to start every rank here"),
            })?;
        let addr = (self.master_addr.clone())
            .or_else(|| std::env::var("MASTER_ADDR").ok())
            .unwrap_or_else(|| "127.0.0.1".into());
        let port = self
            .master_port
            .or_else(|| std::env::var("MASTER_PORT").ok().and_then(|p| p.parse().ok()))
            .unwrap_or(29500);
        Distributed::new(nnodes, rank, &addr, port).map(Some)
    }
}

/// The run directory of rank `r` under the local launcher.
pub fn rank_dir(out: &Path, rank: u32) -> PathBuf {
    if rank == 0 {
        out.to_path_buf()
    } else {
        out.join("ranks").join(rank.to_string())
    }
}

/// Gives rank directory `dir` rank 0's last checkpoint (and nothing newer of its own):
/// every rank resumes from the state rank 0 saved, even when a rank died while writing
/// its own. Across machines the same is done by copying `OUT/checkpoints` to every rank.
pub fn share_checkpoint(out: &Path, dir: &Path) -> Result<(), TrainError> {
    let Some(latest) = growlm_train::latest_checkpoint(out) else {
        return Ok(());
    };
    let mine = dir.join("checkpoints");
    if mine.exists() {
        std::fs::remove_dir_all(&mine).map_err(TrainError::io(&mine))?;
    }
    let name = latest.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    copy_dir(&latest, &mine.join(&name))?;
    let pointer = mine.join("latest");
    growlm_fs::write_atomic(&pointer, name.to_string_lossy().as_bytes()).map_err(TrainError::io(&pointer))
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), TrainError> {
    std::fs::create_dir_all(to).map_err(TrainError::io(to))?;
    for entry in std::fs::read_dir(from).map_err(TrainError::io(from))?.flatten() {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(TrainError::io(&src))?;
        }
    }
    Ok(())
}

/// `args` (this command's, without the program) for rank `rank`: the launcher's own flags
/// and `--out` replaced.
fn rank_args(args: &[String], rank: u32, port: u16, out: &Path) -> Vec<String> {
    let mut kept = Vec::new();
    let mut skip = false;
    for a in args {
        if std::mem::take(&mut skip) {
            continue;
        }
        let flag = a.split('=').next().unwrap_or(a);
        match flag {
            "--local" => {}
            "--out" | "--node-rank" | "--master-addr" | "--master-port" => skip = !a.contains('='),
            _ => kept.push(a.clone()),
        }
    }
    let dir = rank_dir(out, rank);
    kept.extend([
        "--node-rank".into(),
        rank.to_string(),
        "--master-addr".into(),
        "127.0.0.1".into(),
        "--master-port".into(),
        port.to_string(),
        "--out".into(),
        dir.display().to_string(),
    ]);
    kept
}

/// A port on 127.0.0.1 with the `n` ports after it free (checked, then released), below
/// the range the system hands out for outgoing connections (from 32768 on Linux), where
/// the websockets of a run take their own ports.
pub fn free_ports(n: u32) -> Result<u16, TrainError> {
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ (u64::from(std::process::id()) << 32);
    for _ in 0..200 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let p = 20000 + ((x >> 33) % u64::from(12000 - n)) as u16;
        if (0..=n).all(|k| std::net::TcpListener::bind(("127.0.0.1", p + k as u16)).is_ok()) {
            return Ok(p);
        }
    }
    Err(TrainError::Collective(format!(
        "found no {} free ports in a row on 127.0.0.1; pass --master-port",
        n + 1
    )))
}

/// Times the local launcher starts every rank again after a collective failed or hung.
pub const RESTARTS: u32 = 3;

/// Starts `nnodes` ranks of this same command on this machine and waits for them. Rank 0
/// writes to this terminal; rank r > 0 to `OUT/ranks/r.log`. When one rank fails, the
/// others are stopped and the error names it and its log. When the first to fail stopped
/// for its collective ([`growlm_train::COLLECTIVE_EXIT`]: burn-collective 0.21 sometimes
/// hangs), every rank is started again, from the last checkpoint when there is one, up to
/// [`RESTARTS`] times: the curve is the uninterrupted run's, since a resume is exact.
pub fn local(nnodes: u32, port: Option<u16>, out: &Path) -> Result<(), TrainError> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    for attempt in 1..=RESTARTS + 1 {
        match local_once(nnodes, port, out, &args)? {
            None => return Ok(()),
            Some(e) if attempt > RESTARTS => return Err(e),
            Some(e) => {
                eprintln!("{e}\nstarting every rank again ({attempt} of {RESTARTS})");
                if growlm_train::latest_checkpoint(out).is_some() && !args.iter().any(|a| a == "--resume") {
                    args.push("--resume".into());
                }
            }
        }
    }
    unreachable!("the last attempt returns")
}

/// One start of every rank: `None` when all finished, the error of a collective that
/// failed or hung (to start again), or the error of any other failure.
fn local_once(nnodes: u32, port: Option<u16>, out: &Path, args: &[String]) -> Result<Option<TrainError>, TrainError> {
    let exe = std::env::current_exe().map_err(|e| TrainError::Collective(format!("cannot find this program: {e}")))?;
    let port = match port {
        Some(p) => p,
        None => free_ports(Distributed::ports(nnodes) - 1)?,
    };
    let logs = out.join("ranks");
    std::fs::create_dir_all(&logs).map_err(TrainError::io(&logs))?;
    if args.iter().any(|a| a == "--resume") {
        for rank in 1..nnodes {
            share_checkpoint(out, &rank_dir(out, rank))?;
        }
    }
    let mut children: Vec<(u32, Child, Option<PathBuf>)> = Vec::new();
    for rank in 0..nnodes {
        let mut c = Command::new(&exe);
        c.args(rank_args(args, rank, port, out))
            .env_remove("WORLD_SIZE")
            .env_remove("RANK");
        let log = (rank > 0).then(|| logs.join(format!("{rank}.log")));
        if let Some(log) = &log {
            let f = std::fs::File::create(log).map_err(TrainError::io(log))?;
            let g = f.try_clone().map_err(TrainError::io(log))?;
            c.stdout(f).stderr(g);
        }
        let child = c
            .spawn()
            .map_err(|e| TrainError::Collective(format!("cannot start rank {rank}: {e}")))?;
        children.push((rank, child, log));
    }
    let mut failed = None;
    while !children.is_empty() && failed.is_none() {
        std::thread::sleep(Duration::from_millis(50));
        let mut i = 0;
        while i < children.len() {
            match children[i].1.try_wait() {
                Ok(Some(status)) => {
                    let (rank, _, log) = children.remove(i);
                    if !status.success() {
                        failed = Some((rank, status, log));
                        break;
                    }
                }
                _ => i += 1,
            }
        }
    }
    for (_, mut c, _) in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let Some((rank, status, log)) = failed else {
        return Ok(None);
    };
    let e = TrainError::Collective(format!(
        "rank {rank} stopped ({status}){}; the other ranks were stopped. Rerun with --resume to continue from the last checkpoint",
        log.map_or(String::new(), |l| format!(", its log: {}", l.display()))
    ));
    match status.code() == Some(i32::from(growlm_train::COLLECTIVE_EXIT)) {
        true => Ok(Some(e)),
        false => Err(e),
    }
}
