//! The token store against fixtures made by `tests/fixtures/corpus/make_corpus.py`: ids equal
//! to the `tokenizers` library's, the same store from every format of the same documents,
//! the split by document equal to an independent computation, resumed tokenization, changed
//! files refused, and every bad input named.

use std::path::{Path, PathBuf};

use growlm_data::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

struct Expected {
    fraction: f64,
    eos: u32,
    train: Vec<u32>,
    valid: Vec<u32>,
    valid_docs: u64,
}

/// The streams the Python script's ids and flags imply: each document's ids and the
/// end-of-text, in document order, split by its flag.
fn expected() -> Expected {
    let e: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).unwrap()).unwrap();
    let eos = e["eos"].as_u64().unwrap() as u32;
    let (mut train, mut valid, mut valid_docs) = (Vec::new(), Vec::new(), 0);
    for d in e["documents"].as_array().unwrap() {
        let out = if d["valid"].as_bool().unwrap() {
            valid_docs += 1;
            &mut valid
        } else {
            &mut train
        };
        out.extend(d["ids"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as u32));
        out.push(eos);
    }
    Expected {
        fraction: e["valid_fraction"].as_f64().unwrap(),
        eos,
        train,
        valid,
        valid_docs,
    }
}

fn tokenizer() -> Tokenizer {
    Tokenizer::from_file(&fixtures().join("tokenizer.json")).unwrap()
}

fn spec(sources: Vec<PathBuf>, fraction: f64) -> StoreSpec {
    StoreSpec {
        sources,
        docs: DocOptions::default(),
        valid_fraction: fraction,
        progress: false,
    }
}

fn all(s: &Shards) -> Vec<u32> {
    let mut out = Vec::new();
    s.read(0, s.len() as usize, &mut out).unwrap();
    out
}

fn store_of(source: &Path, cache: &Path) -> TokenStore {
    let e = expected();
    let Input::Documents(files) =
        Input::open(&CorpusSource::Path(source.into()), Some(Split::Documents), cache).unwrap()
    else {
        panic!("{} did not open as documents", source.display())
    };
    TokenStore::open_or_build(&spec(files, e.fraction), &tokenizer(), cache).unwrap()
}

#[test]
fn every_format_gives_the_ids_of_tokenizers_and_the_same_store() {
    let e = expected();
    assert!(
        e.valid_docs > 3 && !e.train.is_empty(),
        "the fixture holds out some documents"
    );
    let cache = tempfile::tempdir().unwrap();
    let same = fixtures().join("same");
    for source in [
        "text",
        "docs.jsonl",
        "docs.jsonl.gz",
        "docs.jsonl.zst",
        "docs.parquet",
        "shards",
        "shards/*.jsonl",
    ] {
        let store = store_of(&same.join(source), cache.path());
        assert_eq!(all(&store.train), e.train, "{source}: training ids");
        assert_eq!(all(&store.valid), e.valid, "{source}: validation ids");
        let m = &store.manifest;
        assert_eq!((m.width, m.eos), (2, e.eos), "{source}");
        let docs: u64 = m.sources.iter().map(|s| s.valid_documents).sum();
        assert_eq!(docs, e.valid_docs, "{source}");
        let train_docs: u64 = m.sources.iter().map(|s| s.train_documents).sum();
        assert_eq!(docs + train_docs, 48, "{source}");
    }
}

#[test]
fn batches_from_every_format_are_the_same() {
    let cache = tempfile::tempdir().unwrap();
    let same = fixtures().join("same");
    let batches = |source: &str| {
        let b = Batcher::from_store(store_of(&same.join(source), cache.path()), 3, 24, 5).unwrap();
        let train: Vec<Batch> = (0..20).map(|s| b.train_batch(s).unwrap()).collect();
        (train, b.valid_batches(2).unwrap())
    };
    let text = batches("text");
    for source in ["docs.jsonl.zst", "docs.parquet"] {
        assert!(batches(source) == text, "{source}");
    }
    // Windows cross document (and shard) ends: the training stream is one sequence.
    let mut flat: Vec<i64> = text.0.iter().flat_map(|b| b.inputs.clone()).collect();
    flat.dedup();
    assert!(flat.len() > 100);
}

#[test]
fn gpt2_and_byte_stores_hold_their_ids_and_the_gpt2_end_of_text() {
    let cache = tempfile::tempdir().unwrap();
    let file = fixtures().join("same/docs.jsonl");
    let text: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for kind in [TokenizerKind::Gpt2, TokenizerKind::Byte] {
        let tok = Tokenizer::named(kind.clone()).unwrap();
        let store = TokenStore::open_or_build(&spec(vec![file.clone()], 0.25), &tok, cache.path()).unwrap();
        let mut want = Vec::new();
        for (t, valid) in text.iter().zip(flags()) {
            if !valid {
                want.extend(tok.encode(t.as_bytes()).unwrap().iter().map(|&i| u32::from(i)));
                want.push(tok.eos().unwrap() as u32);
            }
        }
        assert_eq!(all(&store.train), want, "{kind:?}");
    }
    assert_eq!(Tokenizer::named(TokenizerKind::Gpt2).unwrap().eos(), Some(50256));
}

/// The split flags the Python script computed, in document order.
fn flags() -> Vec<bool> {
    let e: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).unwrap()).unwrap();
    e["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["valid"].as_bool().unwrap())
        .collect()
}

#[test]
fn a_tokenization_cut_short_resumes_with_the_sources_it_finished() {
    let cache = tempfile::tempdir().unwrap();
    let shards = fixtures().join("same/shards");
    let first = store_of(&shards, cache.path());
    let dir = first.dir.clone();
    let kept_mtime = std::fs::metadata(dir.join("00000.train.u16"))
        .unwrap()
        .modified()
        .unwrap();
    drop(first);
    // What a kill during the second source leaves: the first source's shards and record, a
    // temporary shard of the second, no record for it, no manifest.
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    std::fs::remove_file(dir.join("00001.json")).unwrap();
    std::fs::remove_file(dir.join("00001.train.u16")).unwrap();
    std::fs::write(dir.join(".00001.train.u16.abc123.tmp"), b"half a shard").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = store_of(&shards, cache.path());
    let e = expected();
    assert_eq!(all(&again.train), e.train);
    assert_eq!(all(&again.valid), e.valid);
    assert!(
        !dir.join(".00001.train.u16.abc123.tmp").exists(),
        "the half shard is left"
    );
    // The first source was not tokenized again.
    let mtime = std::fs::metadata(dir.join("00000.train.u16"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(mtime, kept_mtime);
    // A record whose shard is missing is redone too.
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    std::fs::remove_file(dir.join("00000.valid.u16")).unwrap();
    assert_eq!(all(&store_of(&shards, cache.path()).valid), e.valid);
}

fn err_of(r: Result<TokenStore, DataError>) -> String {
    match r {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_changed_source_or_shard_is_refused_with_the_fix() {
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("docs.jsonl");
    std::fs::copy(fixtures().join("same/docs.jsonl"), &src).unwrap();
    let tok = tokenizer();
    let s = spec(vec![src.clone()], 0.25);
    let store = TokenStore::open_or_build(&s, &tok, cache.path()).unwrap();
    let dir = store.dir.clone();
    drop(store);
    // Touched but the same bytes: accepted (the checksum decides).
    let f = std::fs::File::options().write(true).open(&src).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    TokenStore::open_or_build(&s, &tok, cache.path()).unwrap();
    // Different bytes: refused, naming the file and the store to delete.
    let mut text = std::fs::read(&src).unwrap();
    text.extend_from_slice(b"{\"text\": \"one more\"}\n");
    std::fs::write(&src, &text).unwrap();
    let msg = err_of(TokenStore::open_or_build(&s, &tok, cache.path()));
    assert!(
        msg.contains("docs.jsonl") && msg.contains("changed after it was tokenized"),
        "{msg}"
    );
    assert!(
        msg.contains(&dir.display().to_string()) && msg.contains("Delete"),
        "{msg}"
    );
    std::fs::copy(fixtures().join("same/docs.jsonl"), &src).unwrap();
    // A shard cut short, or changed in place: refused.
    let shard = dir.join("00000.train.u16");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() - 2]).unwrap();
    let msg = err_of(TokenStore::open_or_build(&s, &tok, cache.path()));
    assert!(
        msg.contains("00000.train.u16") && msg.contains("its record says"),
        "{msg}"
    );
    let mut flipped = bytes.clone();
    flipped[10] ^= 1;
    std::fs::write(&shard, &flipped).unwrap();
    let msg = err_of(TokenStore::open_or_build(&s, &tok, cache.path()));
    assert!(msg.contains("checksum differs") && msg.contains("Delete"), "{msg}");
}

fn read_err(file: &str, skip: bool) -> Result<(u64, u64), String> {
    let cache = tempfile::tempdir().unwrap();
    let mut s = spec(vec![fixtures().join("bad").join(file)], 0.25);
    s.docs.skip_bad = skip;
    match TokenStore::open_or_build(&s, &tokenizer(), cache.path()) {
        Ok(st) => Ok((
            st.manifest.sources[0].skipped,
            st.manifest.sources[0].train_documents + st.manifest.sources[0].valid_documents,
        )),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn bad_jsonl_is_named_by_file_and_line_or_skipped_and_counted() {
    for (file, words) in [
        (
            "bad_line.jsonl",
            &["bad_line.jsonl", "line 3", "not JSON", "data.skip_bad_lines"][..],
        ),
        (
            "missing_key.jsonl",
            &["line 2", "no key `text`", "`content`", "data.text_key"][..],
        ),
        ("number_text.jsonl", &["line 5", "`text` is a number, not a string"][..]),
    ] {
        let msg = read_err(file, false).unwrap_err();
        for w in words {
            assert!(msg.contains(w), "{file}: {w:?} not in {msg}");
        }
        assert_eq!(read_err(file, true).unwrap(), (1, 4), "{file}: one skipped, four kept");
    }
}

#[test]
fn truncated_compressed_files_and_bad_parquet_are_refused_by_name() {
    for (file, words) in [
        (
            "truncated.jsonl.gz",
            &["truncated.jsonl.gz", "truncated or not gzip"][..],
        ),
        (
            "truncated.jsonl.zst",
            &["truncated.jsonl.zst", "truncated or not zstd"][..],
        ),
        (
            "int_column.parquet",
            &["column `text` is INT64", "not a string column"][..],
        ),
        (
            "list_column.parquet",
            &["column `text` is a list or struct (`text.list.element`)"][..],
        ),
        ("null_row.parquet", &["row 1", "is null"][..]),
        (
            "truncated.parquet",
            &["truncated.parquet", "not a readable Parquet file"][..],
        ),
        ("mangled.parquet", &["mangled.parquet"][..]),
    ] {
        let msg = read_err(file, false).unwrap_err();
        for w in words {
            assert!(msg.contains(w), "{file}: {w:?} not in {msg}");
        }
    }
    assert_eq!(read_err("null_row.parquet", true).unwrap(), (1, 2));
    // A footer claiming 10^12 rows (pyarrow 26's reader is killed for memory on it): the
    // rows there are read, a batch at a time, and the claim is refused as damage.
    let msg = read_err("claims_1e12_rows.parquet", true).unwrap_err();
    assert!(
        msg.contains("row group 0 claims 1000000000000 rows but holds 3"),
        "{msg}"
    );
}

#[test]
fn a_line_longer_than_the_limit_is_refused_without_reading_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("huge.jsonl");
    let mut bytes = b"{\"text\": \"short\"}\n{\"text\": \"".to_vec();
    bytes.resize(bytes.len() + MAX_DOC_BYTES + 10, b'a');
    std::fs::write(&f, &bytes).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let msg = err_of(TokenStore::open_or_build(
        &spec(vec![f], 0.25),
        &tokenizer(),
        cache.path(),
    ));
    assert!(
        msg.contains("huge.jsonl") && msg.contains("line 2 is longer than 64 MiB"),
        "{msg}"
    );
}

#[test]
fn formats_are_told_by_name_and_sources_listed_in_order() {
    assert_eq!(Format::of(Path::new("a/b.jsonl.zst")), Format::Jsonl(Compression::Zstd));
    assert_eq!(Format::of(Path::new("B.JSONL.GZ")), Format::Jsonl(Compression::Gzip));
    assert_eq!(Format::of(Path::new("train-00001-of-00004.parquet")), Format::Parquet);
    assert_eq!(Format::of(Path::new("kjv.txt")), Format::Text);
    let same = fixtures().join("same");
    let files = list_sources(&same).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.strip_prefix(&same).unwrap().display().to_string())
        .collect();
    // A directory's JSONL and Parquet files, recursively, text files left out.
    assert_eq!(
        names,
        [
            "docs.jsonl",
            "docs.jsonl.gz",
            "docs.jsonl.zst",
            "docs.parquet",
            "shards/part-0.jsonl",
            "shards/part-1.jsonl"
        ]
    );
    let e = list_sources(&same.join("nothing*.jsonl")).unwrap_err().to_string();
    assert!(e.contains("matches no file"), "{e}");
    // `split = "tail"` does not apply to JSONL.
    let e = Input::open(
        &CorpusSource::Path(same.join("docs.jsonl")),
        Some(Split::Tail),
        Path::new("/tmp"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("data.split"), "{e}");
}

#[test]
fn a_tokenizer_json_without_an_end_of_text_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let json = std::fs::read_to_string(fixtures().join("tokenizer.json")).unwrap();
    let p = dir.path().join("tokenizer.json");
    std::fs::write(&p, json.replace("<|endoftext|>", "<|pad|>")).unwrap();
    let e = Tokenizer::from_file(&p).unwrap_err().to_string();
    assert!(e.contains("end-of-text") && e.contains("tokenizer.json"), "{e}");
    let e = Tokenizer::from_file(&dir.path().join("missing.json"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.json"), "{e}");
}

#[test]
fn a_store_of_more_shards_than_it_keeps_open_reads_the_same() {
    // 300 sources (more than the 256 shards kept open): read by opening each shard as
    // needed, the stream equals that of the same documents in one file.
    let work = tempfile::tempdir().unwrap();
    let (dir, one) = (work.path().join("many"), work.path().join("one.jsonl"));
    std::fs::create_dir(&dir).unwrap();
    let mut text = String::new();
    for i in 0..300 {
        let line = format!(
            "{{\"text\": \"document {i}: the union is strong {}\"}}\n",
            "and free ".repeat(i % 7)
        );
        std::fs::write(dir.join(format!("{i:03}.jsonl")), &line).unwrap();
        text += &line;
    }
    std::fs::write(&one, text).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let tok = Tokenizer::byte();
    let many = TokenStore::open_or_build(&spec(list_sources(&dir).unwrap(), 0.05), &tok, cache.path()).unwrap();
    let single = TokenStore::open_or_build(&spec(vec![one], 0.05), &tok, cache.path()).unwrap();
    let open = many.manifest.sources.iter().filter(|s| s.train.tokens > 0).count();
    assert!(open > 256, "only {open} training shards");
    assert_eq!(all(&many.train), all(&single.train));
    assert_eq!(all(&many.valid), all(&single.valid));
    // Windows across shard ends, read one at a time.
    let mut w = Vec::new();
    many.train.read(5, 200, &mut w).unwrap();
    assert_eq!(w, all(&single.train)[5..205]);
}
