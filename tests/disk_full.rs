//! A checkpoint that cannot be written (issue: resource bounds): a "No space left on
//! device" injected at every file operation of the second checkpoint in turn. The run stops
//! with an error naming the file, the first checkpoint stays intact, no temporary directory
//! is left behind, and once there is space the run resumes to the uninterrupted curve, bit
//! for bit.

mod common;

use common::*;
use growlm::train::{latest_checkpoint, testing::fail_checkpoint_write};

#[test]
fn a_full_disk_at_any_checkpoint_file_stops_the_run_and_it_resumes_exactly() {
    let dir = Scratch::new();
    // Checkpoints after steps 4, 8 and 12; growth at 5, so the second is of the grown model.
    let mut cfg = dir.config(12, true, "name = \"fixed\"\nsteps = [5]");
    cfg.train.checkpoint_every = 4;
    let clean = dir.join("clean");
    run(&cfg, &clean, false, None).unwrap();
    // A checkpoint is 8 file operations; the first checkpoint's 8 succeed.
    for k in 0..8 {
        let out = dir.join(format!("full-{k}"));
        fail_checkpoint_write(Some(8 + k));
        let e = run(&cfg, &out, false, None).unwrap_err();
        fail_checkpoint_write(None);
        let text = format!(
            "{e}: {}",
            std::error::Error::source(&e).map_or(String::new(), |s| s.to_string())
        );
        assert!(
            text.contains("No space left on device") && text.contains(&*out.to_string_lossy()),
            "{k}: {text}"
        );
        // The last good checkpoint is the first, intact; nothing half-written is left.
        let last = latest_checkpoint(&out).unwrap();
        // (With `latest` itself unwritable, the second checkpoint is complete on disk but not
        // pointed at; the first is still the one resumed from.)
        assert!(last.ends_with("step-000000004"), "{k}: {last:?}");
        let leftovers: Vec<_> = std::fs::read_dir(out.join("checkpoints"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{k}: {leftovers:?}");
        // Space is back: the run resumes from it to the uninterrupted curve.
        run(&cfg, &out, true, None).unwrap();
        assert_eq!(metrics(&out), metrics(&clean), "{k}");
    }
}
