//! Data parallelism across processes and machines (docs/training.md §Across machines),
//! through burn-collective's global all-reduce: each process is a node, rank 0 runs the
//! collective's orchestrator, and every step's one gradient buffer (`crate::flat`) is
//! averaged over every peer of every node. Launched as torchrun launches: `--nnodes`,
//! `--node-rank`, `--master-addr`, `--master-port`, or `WORLD_SIZE`, `RANK`, `MASTER_ADDR`,
//! `MASTER_PORT`.

use std::net::{TcpListener, ToSocketAddrs, UdpSocket};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;

use burn::collective::CollectiveConfig;

use crate::TrainError;

/// One process's place in a run across processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distributed {
    /// Processes (nodes) in the run.
    pub nnodes: u32,
    /// This process's rank, 0 to `nnodes - 1`; rank 0 runs the orchestrator.
    pub rank: u32,
    /// The host of rank 0, as every rank reaches it.
    pub master_addr: String,
    /// The first orchestrator's port on rank 0. Session turn `k` (0 to 63, see
    /// [`Distributed::PORT_TURNS`]) has its orchestrator on `master_port + k·(nnodes + 1)`
    /// and rank `r`'s tensors on the `1 + r` ports after it.
    pub master_port: u16,
    /// How long a rank waits in a collective before it stops the run (a dead peer):
    /// `GROWLM_COLLECTIVE_TIMEOUT` seconds, default 300 (a peer may be writing a checkpoint).
    pub timeout: Duration,
}

fn bad(key: &str, reason: String) -> TrainError {
    TrainError::Config {
        key: key.into(),
        reason,
    }
}

impl Distributed {
    /// A run of `nnodes` processes; checks the rank and ports.
    pub fn new(nnodes: u32, rank: u32, master_addr: &str, master_port: u16) -> Result<Self, TrainError> {
        if nnodes < 2 {
            return Err(bad(
                "nnodes",
                format!("{nnodes}: a run across processes needs at least 2"),
            ));
        }
        if rank >= nnodes {
            return Err(bad("node-rank", format!("{rank} is not below --nnodes {nnodes}")));
        }
        if u32::from(master_port) + Self::ports(nnodes) > 65536 || master_port == 0 {
            return Err(bad(
                "master-port",
                format!(
                    "{master_port}: the run uses it and the {} ports after it, which must stay below 65536",
                    Self::ports(nnodes) - 1
                ),
            ));
        }
        Ok(Self {
            nnodes,
            rank,
            master_addr: master_addr.to_string(),
            master_port,
            timeout: Duration::from_secs(
                std::env::var("GROWLM_COLLECTIVE_TIMEOUT")
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(300),
            ),
        })
    }

    /// From torchrun's environment variables (`WORLD_SIZE`, `RANK`, `MASTER_ADDR`,
    /// `MASTER_PORT`), or `None` when `WORLD_SIZE` is unset or 1.
    pub fn from_env() -> Result<Option<Self>, TrainError> {
        let var = |k: &str| std::env::var(k).ok();
        let Some(world) = var("WORLD_SIZE") else {
            return Ok(None);
        };
        let num = |k: &str, v: &str| -> Result<u32, TrainError> {
            u32::from_str(v.trim()).map_err(|_| bad(k, format!("`{v}` is not a whole number")))
        };
        let nnodes = num("WORLD_SIZE", &world)?;
        if nnodes <= 1 {
            return Ok(None);
        }
        let rank = num(
            "RANK",
            &var("RANK").ok_or_else(|| bad("RANK", "is unset while WORLD_SIZE is".into()))?,
        )?;
        let addr = var("MASTER_ADDR").unwrap_or_else(|| "127.0.0.1".into());
        let port = var("MASTER_PORT").unwrap_or_else(|| "29500".into());
        let port = u16::from_str(port.trim()).map_err(|_| bad("MASTER_PORT", format!("`{port}` is not a port")))?;
        Self::new(nnodes, rank, &addr, port).map(Some)
    }

    /// Whether this process is rank 0.
    pub fn is_main(&self) -> bool {
        self.rank == 0
    }

    /// Each collective call is a session of its own (burn-collective 0.21's global
    /// all-reduce answers once per registration), taken from this many turns: each turn
    /// has its own orchestrator and tensor ports, so a new session never meets the state or
    /// the ports of the one just closed. (One orchestrator for every session numbered a
    /// node by the count of nodes registered, so a rank registering the next session
    /// before the other's finish of this one arrived could be given its id and reduce
    /// alone.)
    pub const PORT_TURNS: u32 = 64;

    /// Ports a run of `nnodes` processes takes, from `master_port` on.
    pub fn ports(nnodes: u32) -> u32 {
        Self::PORT_TURNS * (nnodes + 1)
    }

    /// The first port of session `call`'s turn: its orchestrator's on rank 0.
    fn turn_port(&self, call: u64) -> u32 {
        let turn = (call % u64::from(Self::PORT_TURNS)) as u32;
        u32::from(self.master_port) + turn * (self.nnodes + 1)
    }

    /// The port this rank serves its tensors on in session `call`.
    pub fn data_port(&self, call: u64) -> u16 {
        (self.turn_port(call) + 1 + self.rank) as u16
    }

    /// The port of session `call`'s orchestrator on rank 0.
    pub fn orchestrator_port(&self, call: u64) -> u16 {
        self.turn_port(call) as u16
    }

    /// Values that ride at the end of session `call`'s buffer: the call's number (below
    /// 2^20, exact in f32) and this rank's one-hot vector. Averaged, they must come back
    /// as the same number and `1 / nnodes` everywhere ([`Distributed::check_stamp`]).
    pub fn stamp(&self, call: u64) -> Vec<f32> {
        let mut v = vec![(call % (1 << 20)) as f32];
        v.extend((0..self.nnodes).map(|r| if r == self.rank { 1.0 } else { 0.0 }));
        v
    }

    /// Checks the averaged [`stamp`](Distributed::stamp) of session `call`: every rank
    /// took part in the same call once. Anything else means the collective put together
    /// ranks out of step (or one alone), and the gradients are not the run's.
    pub fn check_stamp(&self, call: u64, mean: &[f32]) -> Result<(), TrainError> {
        let want = self.stamp(call)[0];
        let share = 1.0 / self.nnodes as f32;
        let ok = mean.len() == 1 + self.nnodes as usize
            && mean[0] == want
            && mean[1..].iter().all(|&x| (x - share).abs() < 1e-6);
        if ok {
            return Ok(());
        }
        Err(TrainError::Collective(format!(
            "rank {} of {}: collective call {call} came back from ranks out of step (stamp {mean:?}, expected {want} \
             and {share} per rank): burn-collective joined the wrong sessions. Stopping before a wrong update; \
             rerun every rank with --resume to continue from the last checkpoint",
            self.rank, self.nnodes
        )))
    }

    /// Waits until the tensor servers of session `call` accept connections: burn-
    /// communication 0.21 starts a session's server without waiting for it to listen, and
    /// a peer that connects first fails the all-reduce. On one machine every rank's server
    /// is polled; across machines (whose hosts only the orchestrator knows) this rank's,
    /// then 20 ms more for the others'.
    pub(crate) fn wait_ready(&self, call: u64) {
        let ready = |host: &str, port: u16| {
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                let addr = (host, port).to_socket_addrs().ok().and_then(|mut a| a.next());
                if addr.is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_ok()) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        let loopback = self
            .own_host()
            .is_ok_and(|h| h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()));
        if loopback {
            for rank in 0..self.nnodes {
                let other = Self { rank, ..self.clone() };
                ready(&self.master_addr, other.data_port(call));
            }
        } else {
            ready("127.0.0.1", self.data_port(call));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// This host's address as rank 0 sees it: the local address of a route to the master
    /// (no packet is sent).
    fn own_host(&self) -> Result<String, TrainError> {
        let master = (self.master_addr.as_str(), self.master_port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                bad(
                    "master-addr",
                    format!(
                        "`{}` does not resolve; give rank 0's host name or address",
                        self.master_addr
                    ),
                )
            })?;
        if master.ip().is_loopback() {
            return Ok(master.ip().to_string());
        }
        let socket = UdpSocket::bind(("0.0.0.0", 0)).and_then(|s| s.connect(master).map(|()| s));
        let local = socket
            .and_then(|s| s.local_addr())
            .map_err(|e| bad("master-addr", format!("no route from this machine to {master}: {e}")))?;
        Ok(local.ip().to_string())
    }

    /// The collective's config for `local` peers in this process, for session `call`.
    pub(crate) fn config(&self, local: usize, call: u64) -> Result<CollectiveConfig, TrainError> {
        let global = burn_communication::Address::from_str(&format!(
            "ws://{}:{}",
            self.master_addr,
            self.orchestrator_port(call)
        ))
        .map_err(|e| bad("master-addr", e))?;
        let node =
            burn_communication::Address::from_str(&format!("ws://{}:{}", self.own_host()?, self.data_port(call)))
                .map_err(|e| bad("master-addr", e))?;
        Ok(CollectiveConfig::default()
            .with_num_devices(local)
            .with_num_nodes(self.nnodes)
            .with_global_address(global)
            .with_node_address(node)
            .with_data_service_port(self.data_port(call)))
    }

    /// Checks that this rank's ports are free, and on rank 0 starts every turn's
    /// orchestrator on a thread of their own for the life of the process.
    pub(crate) fn start(&self) -> Result<(), TrainError> {
        {
            // Before burn-communication's first server installs its INFO-level printer.
            use tracing_subscriber::layer::SubscriberExt;
            use tracing_subscriber::util::SubscriberInitExt;
            use tracing_subscriber::Layer;
            let warn = tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(tracing_subscriber::filter::LevelFilter::WARN);
            let _ = tracing_subscriber::registry().with(warn).try_init();
        }
        let free = |port: u16, what: &str| {
            TcpListener::bind(("0.0.0.0", port)).map(drop).map_err(|e| {
                bad(
                    "master-port",
                    format!(
                        "port {port} ({what} of rank {}) cannot be opened: {e}; pick another --master-port (the ranks use the ports after it)",
                        self.rank
                    ),
                )
            })
        };
        for call in 0..u64::from(Self::PORT_TURNS) {
            free(self.data_port(call), "a tensor service")?;
        }
        if self.is_main() {
            let ports: Vec<u16> = (0..u64::from(Self::PORT_TURNS))
                .map(|c| self.orchestrator_port(c))
                .collect();
            for &port in &ports {
                free(port, "an orchestrator")?;
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(|e| TrainError::Collective(format!("cannot start the orchestrators' runtime: {e}")))?;
            std::thread::spawn(move || {
                runtime.block_on(async move {
                    let mut all = tokio::task::JoinSet::new();
                    for port in ports {
                        all.spawn(burn_collective::start_global_orchestrator(port));
                    }
                    while all.join_next().await.is_some() {}
                })
            });
        }
        Ok(())
    }
}

/// The exit status of a rank stopped by a collective that failed or hung (the watchdog, or
/// a call's stamp out of step): the local launcher starts every rank again from the last
/// checkpoint on it, as a user would rerun them with `--resume`.
pub const COLLECTIVE_EXIT: u8 = 3;

/// Stops the process when it has waited in a collective for longer than the timeout: a
/// rank that died leaves the others waiting, and a run must not hang.
pub(crate) fn watchdog(waiting: Arc<Mutex<Option<Instant>>>, d: Distributed) {
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let since = *waiting.lock().unwrap_or_else(|e| e.into_inner());
        if since.is_some_and(|t| t.elapsed() > d.timeout) {
            eprintln!(
                "error: rank {} of {}: no answer from the other ranks for {} s (one stopped, or rank 0 at {}:{} is unreachable); \
                 stopping. Rerun every rank with --resume to continue from the last checkpoint",
                d.rank,
                d.nnodes,
                d.timeout.as_secs(),
                d.master_addr,
                d.master_port
            );
            std::process::exit(i32::from(COLLECTIVE_EXIT));
        }
    });
}
