//! Policies end to end: the registry, state across resume, and the example policy in a
//! run. Decisions on synthetic curves and parameter checks live in each policy's crate.

mod common;

use common::*;

#[test]
fn the_registry_holds_every_built_in_policy_and_names_the_unknown() {
    let r = growlm::registry();
    let names: Vec<&str> = r.entries().iter().map(|e| e.name).collect();
    assert_eq!(names, ["never", "fixed", "convergence", "example", "solver"]);
    let e = r.build("nope", &toml::Table::new()).err().unwrap().to_string();
    assert!(e.contains("unknown policy `nope`") && e.contains("convergence"), "{e}");
}

#[test]
fn convergence_state_survives_resume() {
    let dir = Scratch::new();
    // Every window counts as flat; evaluations at 4, 8, 12, …: the window is full at 12,
    // and with patience 3 growth comes at 20. The checkpoint at 16 holds a count of 2; a
    // resume that lost it would grow only at 28.
    let cfg = tiny_config(
        &dir.corpus,
        32,
        true,
        "name = \"convergence\"\nrule = \"elasticity\"\nabs_threshold = 10.0\nwindow = 3\npatience = 3",
    );
    let (s, _, _) = killed_run_resumes_exactly(&cfg, dir.path(), 18);
    assert_eq!(s.growth_steps, vec![20]);
}

#[test]
fn the_example_policy_runs_end_to_end() {
    let Trained {
        dir, out, summary: s, ..
    } = trained(12, true, "name = \"example\"\nevery = 5");
    assert_eq!(s.growth_steps, vec![5]);
    assert_eq!(s.policy, "example");
    assert_eq!(events(&out).len(), 1);
    // `never` on a staged config trains the first stage only.
    let cfg = dir.config(12, true, "name = \"never\"");
    let s = run(&cfg, &dir.join("never"), false, None).unwrap();
    assert!(s.growth_steps.is_empty());
    assert_eq!(s.final_stage, 0);
}
