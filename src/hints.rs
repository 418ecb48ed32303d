//! The command line's hints: the flags that fix an error. The libraries name config keys
//! and run directories; the command line names its flags.

/// The flag that fixes `e`, when there is one.
pub fn hint(e: &anyhow::Error) -> Option<&'static str> {
    use growlm_data::DataError;
    use growlm_train::TrainError;
    e.chain().find_map(|cause| match cause.downcast_ref::<TrainError>()? {
        TrainError::RunExists { .. } => Some("pass --resume to continue it, or --out DIR for a new run"),
        TrainError::NothingToResume { .. } => Some("run without --resume to start it"),
        TrainError::RunLocked { .. } => Some("or pass --out DIR for another run"),
        TrainError::ResumeChanged { .. } => {
            Some("drop the --set or flag that changes it, or pass --out DIR for a new run")
        }
        TrainError::CudaNotBuilt => Some(
            "`cargo xtask-cuda train --device cuda …` (alias of `cargo run --release --bin growlm --features cuda --`)",
        ),
        TrainError::Data(DataError::NoSuchSource { .. } | DataError::Checksum { .. } | DataError::Fetch { .. }) => {
            Some("pass --data PATH with a text file or directory of your own")
        }
        TrainError::Config { key, .. } if key == "devices" => Some("--devices N needs N ≥ 1"),
        TrainError::Collective(_) => Some("rerun every rank with --resume to continue from the last checkpoint"),
        _ => None,
    })
}
